// Inside the layers: the logit lens (a slider through the layers), every head of a layer, and one token's query·key row.
// Uses app.js's helpers ($, post, visible, showError); reads /explain/lens, /explain/heads and /explain/qk.
const layers = { lens: null, heads: null, query: null, head: 0 };

function layerName(row) { return row === 0 ? 'embeddings (before any layer)' : `after layer ${row - 1}`; }
function percent(p) { return `${(p * 100).toFixed(p < 0.1 ? 1 : 0)}%`; }
// A panel that cannot be drawn for this model (a fused graph) says why in place, without stopping the others.
function panelProblem(id, e) {
  $(id).innerHTML = '';
  const note = document.createElement('p'); note.className = 'problem'; note.textContent = e.message; $(id).appendChild(note);
  document.body.dataset[`${id}Problem`] = e.message;
}

async function lens() {
  try {
    layers.lens = await (await post('/explain/lens', { text: $('prompt').value, top: 3 })).json();
  } catch (e) { panelProblem('lens', e); layers.lens = null; return; }
  delete document.body.dataset.lensProblem;
  const slider = $('lens-layer'), rows = layers.lens.layers.length;
  slider.max = String(rows - 1);
  const wanted = params.get('lens_layer');
  slider.value = String(wanted !== null ? Math.min(+wanted, rows - 1) : rows - 1);
  if (layers.query === null || layers.query >= layers.lens.tokens.length) layers.query = params.get('query') !== null ? Math.min(+params.get('query'), layers.lens.tokens.length - 1) : layers.lens.tokens.length - 1;
  document.body.dataset.lensLayers = String(rows);
  drawLens();
}

function drawLens() {
  const view = layers.lens; if (!view) return;
  const row = +$('lens-layer').value;
  $('lens-layer-value').textContent = layerName(row);
  const strip = $('lens'); strip.innerHTML = '';
  view.tokens.forEach((token, p) => {
    const cell = view.layers[row][p], final = view.final[p];
    const box = document.createElement('button'); box.className = 'lens-cell'; box.type = 'button';
    if (p === layers.query) box.classList.add('selected');
    box.innerHTML = '<span class="in"></span><span class="arrow">↓ next</span><span class="guess"></span><span class="p"></span>';
    box.querySelector('.in').textContent = visible(token);
    box.querySelector('.guess').textContent = visible(cell.top[0].text);
    box.querySelector('.p').textContent = `${percent(cell.finalTokenProbability)} on “${visible(final.text)}”`;
    box.style.background = heat(cell.finalTokenProbability);
    box.title = `${layerName(row)}, after “${visible(token)}”:\n${cell.top.map((t) => `${visible(t.text)} ${percent(t.probability)}`).join('\n')}\n(the full model finally predicts “${visible(final.text)}”, rank ${cell.finalTokenRank} here)`;
    box.addEventListener('click', () => { layers.query = p; drawLens(); drawHeads(); qk().catch(showError); });
    strip.appendChild(box);
  });
  markLensBox();
  document.body.dataset.lensSelectedP = view.layers[row][layers.query].finalTokenProbability.toFixed(6);
  const last = view.layers[row][view.tokens.length - 1];
  document.body.dataset.lensLayer = String(row);
  document.body.dataset.lensGuess = last.top[0].text;
  document.body.dataset.lensFinalP = last.finalTokenProbability.toFixed(6);
  document.body.dataset.query = String(layers.query);
}

// Where the selected token's box lies (page pixels), so a screenshot can be checked against the data. The panels above
// fill in on their own schedule and push the strip down, so this is measured again whenever the page changes size.
function markLensBox() {
  const selected = $('lens').querySelector('.selected')?.getBoundingClientRect();
  if (selected) document.body.dataset.lensBox = [selected.left + scrollX, selected.top + scrollY, selected.width, selected.height].map(Math.round).join(',');
}
new ResizeObserver(markLensBox).observe(document.body);

async function heads() {
  const layer = $('heads-layer').value === '' ? undefined : +$('heads-layer').value;
  try {
    layers.heads = await (await post('/explain/heads', { text: $('prompt').value, layer })).json();
  } catch (e) { panelProblem('heads', e); layers.heads = null; return; }
  delete document.body.dataset.headsProblem;
  if ($('heads-layer').options.length === 0) {
    for (let l = 0; l < layers.heads.layers; l++) $('heads-layer').add(new Option(`layer ${l}`, l, false, l === layers.heads.layer));
    for (let h = 0; h < layers.heads.weights.length; h++) $('qk-head').add(new Option(`head ${h}`, h));
  }
  drawHeads();
}

function role(s) {
  const roles = [[s.previousToken, 'looks at the previous token'], [s.firstToken, 'looks at the first token'], [s.sameTokenEarlier ?? 0, 'looks at the same token earlier']];
  const [weight, name] = roles.reduce((a, b) => (b[0] > a[0] ? b : a));
  return weight >= 0.3 ? name : 'spreads its attention';
}

function drawHeads() {
  const view = layers.heads; if (!view) return;
  const box = $('heads'); box.innerHTML = '';
  const n = view.tokens.length, q = Math.min(layers.query ?? n - 1, n - 1), size = 132, cell = size / n;
  $('heads-token').textContent = `“${visible(view.tokens[q])}” (position ${q})`;
  view.weights.forEach((rows, h) => {
    const s = view.heads[h];
    const card = document.createElement('figure'); card.className = 'head';
    const canvas = document.createElement('canvas'); canvas.width = size; canvas.height = size;
    const g = canvas.getContext('2d');
    for (let r = 0; r < n; r++) {
      for (let k = 0; k < n; k++) {
        g.fillStyle = k > r ? '#e5e7eb' : `rgba(37, 99, 235, ${rows[r][k]})`; // grey: the causal mask hides the future
        g.fillRect(k * cell, r * cell, cell - (n < 30 ? 1 : 0), cell - (n < 30 ? 1 : 0));
      }
    }
    g.strokeStyle = '#dc2626'; g.lineWidth = 2; g.strokeRect(1, q * cell, size - 2, cell); // the selected token's row
    const caption = document.createElement('figcaption');
    caption.textContent = `head ${h}: ${role(s)}`;
    caption.title = `previous token ${percent(s.previousToken)}, first token ${percent(s.firstToken)}, same token earlier ${s.sameTokenEarlier === null ? '–' : percent(s.sameTokenEarlier)}, entropy ${s.entropyBits.toFixed(2)} bits`;
    const numbers = document.createElement('small');
    numbers.textContent = `prev ${percent(s.previousToken)} · first ${percent(s.firstToken)} · entropy ${s.entropyBits.toFixed(1)} bits`;
    card.append(canvas, caption, numbers);
    card.addEventListener('click', () => { $('qk-head').value = String(h); layers.head = h; drawQk(); });
    box.appendChild(card);
  });
  document.body.dataset.headsCount = String(view.weights.length);
  document.body.dataset.headsQuery = String(q);
  document.body.dataset.headsLayer = String(view.layer);
}

async function qk() {
  if (layers.lens === null && layers.heads === null) return;
  const layer = $('heads-layer').value === '' ? undefined : +$('heads-layer').value;
  try {
    layers.qk = await (await post('/explain/qk', { text: $('prompt').value, layer, query: layers.query ?? undefined })).json();
  } catch (e) { panelProblem('qk', e); layers.qk = null; return; }
  delete document.body.dataset.qkProblem;
  drawQk();
}

function drawQk() {
  const view = layers.qk; if (!view) return;
  const h = +($('qk-head').value || 0);
  const table = $('qk'); table.innerHTML = '';
  const head = document.createElement('tr');
  for (const title of ['key', 'q·k (dot product)', `× ${view.scale.toPrecision(3)} (scale)`, '+ mask', 'softmax → weight']) { const th = document.createElement('th'); th.textContent = title; head.appendChild(th); }
  table.appendChild(head);
  let sum = 0;
  view.tokens.forEach((token, k) => {
    const masked = view.mask[k] === null, w = masked ? 0 : view.weights[h][k];
    sum += w;
    const tr = document.createElement('tr'); if (masked) tr.className = 'masked';
    const cells = [visible(token), view.raw[h][k].toFixed(3), view.scaled[h][k].toFixed(3), masked ? '−∞ (future)' : '0', ''];
    for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }
    const bar = document.createElement('span'); bar.className = 'fill'; bar.style.width = `${Math.round(w * 160)}px`;
    const value = document.createElement('span'); value.textContent = masked ? '0' : w.toFixed(3);
    tr.lastChild.append(bar, value);
    table.appendChild(tr);
  });
  $('qk-title').textContent = `layer ${view.layer}, head ${h}, query “${visible(view.tokens[view.query])}”`;
  document.body.dataset.qkQuery = String(view.query);
  document.body.dataset.qkSum = sum.toFixed(6);
  document.body.dataset.qkMasked = String(view.mask.filter((m) => m === null).length);
}

async function refreshLayers() {
  await Promise.all([lens(), heads()]);
  drawHeads(); // the lens picks the selected token; the heads may have been drawn before it did
  await qk();
  document.body.dataset.layersReady = '1';
}

function startLayers() {
  $('lens-layer').addEventListener('input', drawLens);
  $('heads-layer').addEventListener('change', () => { heads().then(qk).catch(showError); });
  $('qk-head').addEventListener('change', () => { layers.head = +$('qk-head').value; drawQk(); });
  $('prompt').addEventListener('change', () => { layers.query = null; refreshLayers().catch(showError); });
  if (params.get('prompt')) $('prompt').value = params.get('prompt');
  refreshLayers().catch(showError);
}
startLayers();
