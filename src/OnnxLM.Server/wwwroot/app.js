// The playground: only the server's own endpoints (/v1/completions, /explain/*, /v1/models).
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let bytesPerToken = 0;

function visible(s) { return s.replace(/ /g, '\u00b7').replace(/\n/g, '\u23ce'); }
function heat(p) { // probability 0..1 → red (unlikely) … green (likely)
  const h = Math.round(120 * Math.max(0, Math.min(1, p)));
  return `hsl(${h}, 70%, 80%)`;
}
// The API key lives in this tab's sessionStorage only: it is gone when the tab closes and never sits in a URL or on disk.
const KEY = 'onnxlm-api-key';
function headers(extra) {
  const key = sessionStorage.getItem(KEY);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : { ...extra };
}
// Every call goes through here: a refused request becomes an Error carrying the server's error object message.
async function call(path, init = {}) {
  let r;
  try {
    r = await fetch(path, { ...init, headers: headers(init.headers) });
  } catch (e) { // the request never got an answer: the server stopped, or the network is down
    const error = new Error(`Cannot reach the server (${path}): ${e.message}. Is it still running?`); error.status = 0; throw error;
  }
  if (!r.ok) {
    let message = `${r.status} ${r.statusText}`;
    try { message = (await r.json()).error?.message ?? message; } catch { /* not an error object */ }
    const error = new Error(message); error.status = r.status; error.path = path; throw error;
  }
  return r;
}
function post(path, body) { return call(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }); }
function showError(e) {
  const box = $('error');
  const where = e.status ? `${e.path ?? 'request'} answered ${e.status}: ` : '';
  box.textContent = where + (e.status === 401 ? `${e.message} Enter the server's API key above.` : e.message);
  box.hidden = false;
  document.body.dataset.error = e.message;
  if (e.status === 401) $('api-key').focus();
}
function clearError() { $('error').hidden = true; $('error').textContent = ''; delete document.body.dataset.error; }
// Panels run on their own; each reports its failure instead of failing silently. A new action clears the last failure.
function guarded(f) { return (...a) => { clearError(); return f(...a).catch(showError); }; }
function sampling() {
  const body = { temperature: +$('temperature').value, top_p: +$('top_p').value, top_k: +$('top_k').value, min_p: +$('min_p').value,
    repetition_penalty: +$('repetition_penalty').value, max_tokens: +$('max_tokens').value, logprobs: 5 };
  if ($('seed').value !== '') body.seed = +$('seed').value;
  return body;
}
function showCache(tokens) {
  $('cache').textContent = `KV cache: ${tokens} tokens × ${bytesPerToken.toLocaleString()} B = ${(tokens * bytesPerToken / 1024).toFixed(1)} KiB`;
}

async function generate() {
  const prompt = $('prompt').value;
  const out = $('output');
  out.innerHTML = '';
  const head = document.createElement('span'); head.className = 'prompt'; head.textContent = prompt; out.appendChild(head);
  document.body.dataset.generated = '0';
  const promptTokens = (await (await post('/tokenize', { prompt })).json()).count;
  showCache(promptTokens);
  if (params.get('stream') === '0') { // one response, drawn token by token from its logprobs (for screenshots)
    const choice = (await (await post('/v1/completions', { prompt, ...sampling() })).json()).choices[0];
    choice.logprobs.tokens.forEach((text, i) => addToken(out, text, { token_logprobs: [choice.logprobs.token_logprobs[i]], top_logprobs: [choice.logprobs.top_logprobs[i]] }));
    showCache(promptTokens + choice.logprobs.tokens.length);
    document.body.dataset.generated = String(choice.logprobs.tokens.length);
    document.body.dataset.done = '1';
    return;
  }
  const r = await post('/v1/completions', { prompt, stream: true, ...sampling() });
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '', count = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const line = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const chunk = JSON.parse(line.slice(6));
      if (chunk.error) { const error = new Error(chunk.error.message ?? 'the stream failed'); error.path = '/v1/completions'; throw error; }
      const choice = chunk.choices[0];
      if (!choice || !choice.text) continue;
      addToken(out, choice.text, choice.logprobs);
      count++;
      document.body.dataset.generated = String(count);
      showCache(promptTokens + count);
    }
  }
  document.body.dataset.done = '1';
}

function addToken(out, text, lp) {
  const span = document.createElement('span');
  span.className = 'token';
  span.textContent = text;
  if (lp && lp.token_logprobs.length) {
    const p = Math.exp(lp.token_logprobs[0]);
    span.style.background = heat(p);
    span.dataset.prob = p.toFixed(4);
    const top = lp.top_logprobs[0] ? Object.entries(lp.top_logprobs[0]).map(([t, l]) => `${visible(t)} ${(Math.exp(l) * 100).toFixed(1)}%`).join('\n') : '';
    detail(span, `p = ${(p * 100).toFixed(1)}%\n${top}`);
  }
  out.appendChild(span);
}

async function next() {
  const view = await (await post('/explain/next', { prompt: $('prompt').value, top: 10, temperature: +$('temperature').value })).json();
  const t = view.temperatures[0];
  const panel = $('next');
  panel.innerHTML = '';
  for (const token of t.top) {
    const row = document.createElement('div'); row.className = 'bar';
    row.innerHTML = `<span class="label"></span><span class="fill"></span><span class="value"></span>`;
    row.querySelector('.label').textContent = visible(token.text);
    row.querySelector('.fill').style.width = `${Math.round(token.probability * 300)}px`;
    row.querySelector('.value').textContent = `${(token.probability * 100).toFixed(1)}%`;
    row.dataset.prob = token.probability.toFixed(6);
    panel.appendChild(row);
  }
  $('next-stats').textContent = `T = ${t.temperature}: entropy ${t.entropyBits.toFixed(2)} bits; top-p ${view.topP} keeps ${t.topPKeeps} tokens, min-p ${view.minP} keeps ${t.minPKeeps}`;
  document.body.dataset.nextTemperature = String(t.temperature);
  document.body.dataset.nextTop = t.top[0].probability.toFixed(6);
}

async function tokens() {
  const view = await (await post('/explain/tokens', { text: $('prompt').value })).json();
  const box = $('tokens');
  box.innerHTML = '';
  let word = 0;
  for (const token of view.tokens) {
    const el = document.createElement('span'); el.className = 'piece';
    el.textContent = visible(token.text || token.piece);
    const id = document.createElement('sub'); id.textContent = token.id; el.appendChild(id);
    const merges = view.words.find((w) => w.word.length > 0 && token.piece.length > 0 && w.word.includes(token.piece));
    if (merges) detail(el, merges.merges.map((m) => `${m.left} + ${m.right} → ${m.result} (#${m.rank})`).join('\n') || 'no merges');
    box.appendChild(el);
    word++;
  }
  document.body.dataset.tokens = String(view.tokens.length);
}

async function attention() {
  const layer = $('layer').value === '' ? undefined : +$('layer').value;
  const head = $('head').value === '' ? undefined : +$('head').value;
  let view;
  try {
    view = await (await post('/explain/attention', { text: $('prompt').value, layer, head })).json();
  } catch (e) { showError(e); return; }
  if ($('layer').options.length === 0) {
    for (let l = 0; l < view.layers; l++) $('layer').add(new Option(`layer ${l}`, l, false, l === view.layer));
    for (let h = 0; h < view.heads; h++) $('head').add(new Option(`head ${h}`, h));
  }
  const canvas = $('attention'), n = view.tokens.length, labels = view.tokens.map(visible);
  let g = canvas.getContext('2d');
  g.font = '11px monospace';
  const widths = labels.map((l) => g.measureText(l).width);
  // Whole labels: rows get the widest label's room on the left, columns slant up-right from their cell's centre, so the
  // grid leaves room above for the longest and shrinks until the last columns' labels end inside the canvas.
  const slant = Math.PI / 3, cos = Math.cos(slant), sin = Math.sin(slant);
  const left = Math.ceil(Math.max(...widths)) + 8, top = Math.ceil(Math.max(...widths) * sin) + 12;
  const cell = Math.min((canvas.width - left) / n, ...widths.map((w, k) => (canvas.width - 8 - left - w * cos) / (k + 0.5)));
  canvas.height = Math.ceil(top + n * cell + 1);
  g = canvas.getContext('2d');
  g.clearRect(0, 0, canvas.width, canvas.height);
  g.font = '11px monospace';
  for (let q = 0; q < n; q++) {
    g.textAlign = 'right'; g.textBaseline = 'middle'; g.fillStyle = '#333'; g.fillText(labels[q], left - 4, top + q * cell + cell / 2);
    for (let k = 0; k < n; k++) {
      const w = view.weights[q][k];
      g.fillStyle = k > q ? '#f3f4f6' : `rgba(37, 99, 235, ${w})`;
      g.fillRect(left + k * cell, top + q * cell, cell - 1, cell - 1);
    }
  }
  let reach = 0;
  for (let k = 0; k < n; k++) {
    g.save(); g.translate(left + (k + 0.5) * cell, top - 4); g.rotate(-slant); g.textAlign = 'left'; g.textBaseline = 'middle'; g.fillStyle = '#333'; g.fillText(labels[k], 0, 0); g.restore();
    reach = Math.max(reach, left + (k + 0.5) * cell + widths[k] * cos);
  }
  document.body.dataset.attentionReach = `${Math.ceil(reach)}/${canvas.width}`;
  document.body.dataset.attention = String(n);
}

// Details on hover and on keyboard focus, in one styled box (#tip) that screen readers read as the element's description.
function detail(el, text) {
  el.dataset.detail = text;
  el.tabIndex = 0;
  el.setAttribute('aria-describedby', 'tip');
}
function showTip(el) {
  const tip = $('tip');
  tip.textContent = el.dataset.detail;
  tip.hidden = false;
  const box = el.getBoundingClientRect();
  tip.style.left = `${Math.max(4, Math.min(box.left + window.scrollX, window.scrollX + document.documentElement.clientWidth - tip.offsetWidth - 4))}px`;
  tip.style.top = `${box.bottom + window.scrollY + 6}px`;
  document.body.dataset.tip = el.dataset.detail;
}
function hideTip() { $('tip').hidden = true; delete document.body.dataset.tip; }
function watchTips() {
  const target = (e) => e.target.closest?.('[data-detail]');
  document.addEventListener('pointerover', (e) => { const el = target(e); if (el) showTip(el); });
  document.addEventListener('pointerout', (e) => { const el = target(e); if (el && !el.contains(e.relatedTarget) && document.activeElement !== el) hideTip(); });
  document.addEventListener('focusin', (e) => { const el = target(e); if (el) showTip(el); });
  document.addEventListener('focusout', (e) => { if (target(e)) hideTip(); });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') hideTip(); });
}

async function refresh() { await Promise.all([next(), tokens(), attention()]); }

// Loads what depends on the server (and on the key, when it asks for one); run again when the key changes.
async function load() {
  clearError();
  const models = await (await call('/v1/models')).json();
  $('model').textContent = `model: ${models.data.map((m) => m.id).join(', ')}`;
  bytesPerToken = (await (await call('/explain/cache')).json()).bytes_per_token;
  await refresh();
  document.body.dataset.ready = '1';
}

function useKey(key) {
  if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
  return load();
}

async function start() {
  // A key in the fragment (#key=...) is taken as if typed, then removed from the address bar; fragments never reach the server.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get('key')) {
    sessionStorage.setItem(KEY, fragment.get('key'));
    history.replaceState(null, '', location.pathname + location.search);
  }
  $('api-key').value = sessionStorage.getItem(KEY) ?? '';
  $('api-key').addEventListener('change', () => useKey($('api-key').value.trim()).catch(showError));
  if (params.get('prompt')) $('prompt').value = params.get('prompt');
  if (params.get('temperature')) { $('temperature').value = params.get('temperature'); }
  if (params.get('seed')) $('seed').value = params.get('seed');
  if (params.get('max_tokens')) $('max_tokens').value = params.get('max_tokens');
  $('temperature-value').textContent = $('temperature').value;
  $('temperature').addEventListener('input', () => { $('temperature-value').textContent = $('temperature').value; guarded(next)(); });
  $('prompt').addEventListener('change', guarded(refresh));
  $('layer').addEventListener('change', guarded(attention));
  $('head').addEventListener('change', guarded(attention));
  $('generate').addEventListener('click', guarded(generate));
  watchTips();
  await load();
  if (params.get('autorun')) await generate();
  // ?detail=N focuses the Nth output token, as Tab would, to show its detail (for screenshots and tests).
  if (params.get('detail') !== null) $('output').querySelectorAll('.token')[+params.get('detail')]?.focus();
}
start().catch(showError);
