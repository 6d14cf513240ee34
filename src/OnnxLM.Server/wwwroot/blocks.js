// The block panels: what each layer's attention and MLP add, zeroing one, room in many dimensions, what context costs.
// Uses app.js's helpers ($, post, guarded, showError, visible); reports its state on <body data-*> for tests.
const ATTENTION = '#3b82f6';
const MLP = '#f97316';
const TOKENS = '#8b5cf6';
const RECOMPUTE = '#dc2626';

// A bar chart on a canvas: groups of bars (one value per series) with labels under each group; returns each bar's box.
function barChart(canvas, groups, labels, colours, max) {
  const g = canvas.getContext('2d');
  const [left, right, top, bottom] = [34, 8, 8, 22];
  const w = canvas.width - left - right, h = canvas.height - top - bottom;
  g.fillStyle = '#fff'; g.fillRect(0, 0, canvas.width, canvas.height);
  g.strokeStyle = '#999'; g.beginPath(); g.moveTo(left, top); g.lineTo(left, top + h); g.lineTo(left + w, top + h); g.stroke();
  g.fillStyle = '#555'; g.font = '11px sans-serif'; g.textAlign = 'right';
  g.fillText(max.toPrecision(3), left - 3, top + 9); g.fillText('0', left - 3, top + h);
  const boxes = [];
  const gw = w / groups.length, bw = gw * 0.8 / colours.length;
  groups.forEach((values, i) => {
    values.forEach((v, s) => {
      const bh = Math.round(h * v / max);
      const x = Math.round(left + i * gw + gw * 0.1 + s * bw);
      g.fillStyle = colours[s]; g.fillRect(x, top + h - bh, Math.max(1, Math.floor(bw) - 1), bh);
      boxes.push([x, top + h - bh, Math.max(1, Math.floor(bw) - 1), bh]);
    });
    g.fillStyle = '#555'; g.textAlign = 'center';
    if (labels[i] !== '') g.fillText(labels[i], left + i * gw + gw / 2, top + h + 14);
  });
  return boxes;
}

function place(el) { // the element's box in page pixels, for screenshot checks
  const r = el.getBoundingClientRect();
  return [Math.round(r.left + scrollX), Math.round(r.top + scrollY)].join(',');
}

function list(target, title, tokens, keep) {
  const box = document.createElement('div'); box.className = 'ablation-list';
  const head = document.createElement('strong'); head.textContent = title; box.appendChild(head);
  for (const t of tokens) {
    const row = document.createElement('div'); row.className = 'bar';
    const label = document.createElement('span'); label.className = 'label'; label.textContent = visible(t.text);
    const fill = document.createElement('span'); fill.className = 'fill'; fill.style.width = `${Math.round(t.probability * 120)}px`;
    if (t.id === keep) fill.style.background = MLP;
    const value = document.createElement('span'); value.className = 'value'; value.textContent = `${(t.probability * 100).toFixed(1)}%`;
    row.append(label, fill, value); box.appendChild(row);
  }
  target.appendChild(box);
}

async function contributions() {
  const body = { text: $('prompt').value };
  if ($('ablate-layer').value !== '') body.layer = +$('ablate-layer').value;
  if ($('ablate-what').value !== '') body.head = +$('ablate-what').value;
  const view = await (await post('/explain/contributions', body)).json();
  const c = view.contributions, a = view.ablation;
  const layers = c.attentionNorms.length;
  const attention = c.attentionNorms.map((n) => n[n.length - 1]), mlp = c.mlpNorms.map((n) => n[n.length - 1]);
  const canvas = $('contributions');
  const max = Math.max(...attention, ...mlp);
  const boxes = barChart(canvas, attention.map((v, i) => [v, mlp[i]]), attention.map((_, i) => String(i)), [ATTENTION, MLP], max);
  $('contributions-caption').textContent = `at the last token, ${visible(c.tokens[c.tokens.length - 1])}: blue = attention, orange = MLP (the embedding itself is ${c.embeddingNorms[c.embeddingNorms.length - 1].toFixed(1)})`;
  const layerSelect = $('ablate-layer');
  if (layerSelect.options.length !== layers + 1) {
    layerSelect.innerHTML = '<option value="">the busiest</option>' + attention.map((_, i) => `<option value="${i}">layer ${i}</option>`).join('');
  }
  const what = $('ablate-what');
  if (what.options.length === 1) { // the heads the attention panel lists (none when the graph fuses attention)
    for (const option of $('head').options) if (option.value !== '') what.add(new Option(`its head ${option.value}`, option.value));
  }
  const out = $('ablation'); out.innerHTML = '';
  const zeroed = a.head === null || a.head === undefined ? `layer ${a.layer}'s MLP` : `layer ${a.layer}, head ${a.head}`;
  const summary = document.createElement('p');
  summary.textContent = `Zeroing ${zeroed}: p(${visible(a.originalTop.text)}) ${(a.originalTop.probability * 100).toFixed(1)}% → ${(a.originalTopProbabilityAfter * 100).toFixed(1)}%, the distribution moved ${a.klDivergenceBits.toFixed(3)} bits (KL).`;
  out.appendChild(summary);
  list(out, 'before', a.before, a.originalTop.id);
  list(out, 'after', a.after, a.originalTop.id);
  document.body.dataset.contributions = String(layers);
  document.body.dataset.contributionsAt = place(canvas);
  document.body.dataset.contributionsBars = JSON.stringify(boxes.map((b) => [b[0] + 1, b[1] + b[3] - 1]));
  document.body.dataset.ablationLayer = String(a.layer);
  document.body.dataset.ablationTop = a.originalTop.text;
  document.body.dataset.ablationAfter = a.originalTopProbabilityAfter.toFixed(6);
  document.body.dataset.ablationKl = a.klDivergenceBits.toFixed(6);
}

async function dimensions() {
  const view = await (await post('/explain/dimensions', { epsilon: +$('epsilon').value })).json();
  const r = view.randomDirections, t = view.tokenEmbeddings;
  const max = Math.max(...r.histogram, ...t.histogram);
  const labels = r.histogram.map((_, i) => (i % 5 === 0 ? (r.histogramMin + i * (r.histogramMax - r.histogramMin) / r.histogram.length).toFixed(1) : ''));
  barChart($('dimensions'), r.histogram.map((v, i) => [v, t.histogram[i]]), labels, [ATTENTION, TOKENS], max);
  const atLeast = view.nearlyOrthogonalAtWidth >= view.searchLimit ? 'at least ' : '';
  $('dimensions-text').textContent = `Random directions in ${view.width} dimensions: cosine sd ${r.standardDeviation.toFixed(3)} (1/√${view.width} = ${(1 / Math.sqrt(view.width)).toFixed(3)}); `
    + `token embeddings: mean ${t.mean.toFixed(3)}, sd ${t.standardDeviation.toFixed(3)}. Directions with every |cosine| < ${view.epsilon}: `
    + `${atLeast}${view.nearlyOrthogonalAtWidth} fit in ${view.width} dimensions, ${view.nearlyOrthogonalIn3D} in 3.`;
  document.body.dataset.dimensionsWidth = String(view.width);
  document.body.dataset.dimensionsAtWidth = String(view.nearlyOrthogonalAtWidth);
  document.body.dataset.dimensionsIn3d = String(view.nearlyOrthogonalIn3D);
}

async function cost() {
  $('cost-text').textContent = 'measuring…';
  const view = await (await post('/explain/cost', { max_length: +($('cost-length').value), repeats: 2 })).json();
  const canvas = $('cost');
  const g = canvas.getContext('2d');
  const [left, right, top, bottom] = [40, 10, 10, 22];
  const w = canvas.width - left - right, h = canvas.height - top - bottom;
  const xMax = Math.max(...view.points.map((p) => p.length)), yMax = Math.max(...view.points.map((p) => p.recomputeStepMs));
  const x = (n) => left + w * n / xMax, y = (ms) => top + h - h * ms / yMax;
  g.fillStyle = '#fff'; g.fillRect(0, 0, canvas.width, canvas.height);
  g.strokeStyle = '#999'; g.beginPath(); g.moveTo(left, top); g.lineTo(left, top + h); g.lineTo(left + w, top + h); g.stroke();
  g.fillStyle = '#555'; g.font = '11px sans-serif'; g.textAlign = 'right'; g.fillText(`${yMax.toFixed(0)} ms`, left - 3, top + 9);
  g.textAlign = 'center'; g.fillText(`${xMax} tokens`, left + w - 20, top + h + 14);
  for (const [key, colour] of [['cachedStepMs', ATTENTION], ['recomputeStepMs', RECOMPUTE]]) {
    g.strokeStyle = colour; g.fillStyle = colour; g.lineWidth = 2; g.beginPath();
    view.points.forEach((p, i) => (i ? g.lineTo(x(p.length), y(p[key])) : g.moveTo(x(p.length), y(p[key]))));
    g.stroke();
    for (const p of view.points) g.fillRect(x(p.length) - 3, y(p[key]) - 3, 6, 6);
  }
  g.lineWidth = 1;
  const last = view.points[view.points.length - 1];
  const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
  $('cost-text').textContent = `At ${last.length} tokens one step takes ${last.cachedStepMs.toFixed(1)} ms with the cache (blue) and ${last.recomputeStepMs.toFixed(1)} ms recomputing (red). `
    + `The cache holds ${kib(last.kvCacheBytes)} (${view.bytesPerToken.toLocaleString()} B per token, growing linearly); recomputing writes ${kib(last.recomputeScoreBytes)} of attention scores `
    + `against ${kib(last.cachedScoreBytes)} with the cache: n² against n.`;
  document.body.dataset.cost = String(view.points.length);
  document.body.dataset.costScores = view.points.map((p) => p.recomputeScoreBytes).join(',');
}

async function blocks() { await Promise.all([contributions(), dimensions()]); document.body.dataset.blocks = '1'; }

(function startBlocks() {
  $('prompt').addEventListener('change', guarded(contributions));
  $('ablate').addEventListener('click', guarded(contributions));
  $('epsilon').addEventListener('change', guarded(dimensions));
  $('measure-cost').addEventListener('click', guarded(cost));
  if (params.get('cost')) $('cost-length').value = params.get('cost');
  // The attention panel fills the head list: draw once the page's first load is done (app.js sets data-ready or data-error),
  // then measure the cost when the address asks for it (?cost=N tokens).
  const ready = () => document.body.dataset.ready === '1' || document.body.dataset.error !== undefined;
  const first = () => blocks().then(() => (params.get('cost') ? cost() : undefined)).catch(showError);
  if (ready()) { first(); return; }
  const watch = new MutationObserver(() => { if (ready()) { watch.disconnect(); first(); } });
  watch.observe(document.body, { attributes: true });
}());
