// paracorr dashboard: one page, hash routes (#/jobs[?selected=A,B], #/jobs/<id>,
// #/compare/<id>,<id>, #/new),
// talking to the API of the daemon that serves it. No framework, no build
// step; every piece of text from the server goes in through textContent.
'use strict';

const view = document.getElementById('view');
const banner = document.getElementById('banner');
const tokenForm = document.getElementById('token-form');
let timer = null; // the current view's refresh, cleared on navigation

// --- the API -------------------------------------------------------------

function token() {
  return sessionStorage.getItem('paracorr-token') || '';
}

class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || ('HTTP ' + status));
    this.status = status;
    this.problem = problem;
  }
}

// fetch with the token; JSON in and out; a problem+json becomes an ApiError.
async function api(method, path, opts = {}) {
  const headers = {};
  if (token()) headers.Authorization = 'Bearer ' + token();
  let body = opts.body;
  if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  } else if (opts.type) {
    headers['Content-Type'] = opts.type;
  }
  let resp;
  try {
    resp = await fetch(path, {method, headers, body});
  } catch (e) {
    showBanner('The daemon does not answer (' + e.message + '); retrying.');
    throw e;
  }
  hideBanner();
  const type = resp.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await resp.json().catch(() => null) : await resp.text();
  if (resp.status === 401) askToken();
  if (!resp.ok) throw new ApiError(resp.status, typeof data === 'object' ? data : null);
  return data;
}

// A POST of a file (a model, a dataset's form) with its progress: fetch
// cannot report an upload's progress, XMLHttpRequest can. onprogress gets
// (sent, total, seconds); the answer is as api()'s.
function upload(path, body, type, onprogress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    const t0 = performance.now();
    x.open('POST', path);
    if (token()) x.setRequestHeader('Authorization', 'Bearer ' + token());
    if (type) x.setRequestHeader('Content-Type', type);
    x.upload.onprogress = (ev) => {
      if (ev.lengthComputable) onprogress(ev.loaded, ev.total, (performance.now() - t0) / 1000);
    };
    x.onerror = () => {
      showBanner('The daemon does not answer; the upload did not finish.');
      reject(new Error('the upload did not finish'));
    };
    x.onload = () => {
      hideBanner();
      let data = null;
      try { data = JSON.parse(x.responseText); } catch (e) { data = null; }
      if (x.status === 401) askToken();
      if (x.status < 200 || x.status > 299) reject(new ApiError(x.status, data));
      else resolve(data);
    };
    x.send(body);
  });
}

// An upload's progress as a bar and a line: '12.5 of 40.0 MB (31%) · ~8 s
// left', the rate so far giving the time left; then that the daemon checks it.
function uploadProgress(out, what) {
  const line = h('small', {'data-testid': 'upload-eta'}, 'Uploading…');
  const bar = progressBar({fraction: 0});
  out.replaceChildren(bar, line);
  return (sent, total, seconds) => {
    const f = total ? sent / total : 0;
    const mb = (b) => (b / 1e6).toFixed(1);
    bar.firstChild.style.width = (100 * f).toFixed(1) + '%';
    bar.setAttribute('aria-valuenow', Math.round(100 * f));
    if (sent >= total) {
      line.textContent = 'Sent ' + mb(total) + ' MB; the daemon checks the ' + what + '…';
      return;
    }
    const eta = sent > 0 && seconds > 0.5 ? ' · ~' + duration(seconds * (total - sent) / sent) + ' left' : '';
    line.textContent = mb(sent) + ' of ' + mb(total) + ' MB (' + Math.floor(100 * f) + '%)' + eta;
  };
}

function showBanner(text) {
  banner.textContent = text;
  banner.hidden = false;
}

function hideBanner() {
  banner.hidden = true;
}

function askToken() {
  tokenForm.hidden = false;
  document.getElementById('token-input').focus();
}

tokenForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem('paracorr-token', document.getElementById('token-input').value.trim());
  tokenForm.hidden = true;
  route();
});

// --- small DOM helpers ---------------------------------------------------

// h('td', {class: 'num'}, 'text', child, ...): attributes set as attributes,
// children as text nodes or elements; never parsed as HTML.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const pct = (v) => (typeof v === 'number' ? (100 * v).toFixed(2) + '%' : '–');
// A random mean with the half-width of its 95% interval, in points, as the
// CLI summary prints it; the mean alone where there is no interval.
const pctCi = (r) => {
  const ci = r && r.accuracy_ci95;
  if (!Array.isArray(ci) || typeof r.accuracy_mean !== 'number') return pct(r && r.accuracy_mean);
  return pct(r.accuracy_mean) + ' ± ' + (50 * (ci[1] - ci[0])).toFixed(2);
};
const sig = (v) => (typeof v === 'number' ? Number(v.toPrecision(4)).toString() : '–');
const shortId = (id) => (id || '').slice(0, 12);
const when = (t) => (t ? new Date(t).toLocaleString() : '–');
const finished = (s) => s === 'succeeded' || s === 'failed' || s === 'cancelled';

function badge(status) {
  return h('span', {class: 'badge ' + status}, status);
}

function progressBar(p) {
  const f = p && typeof p.fraction === 'number' ? Math.max(0, Math.min(1, p.fraction)) : 0;
  const span = h('span');
  span.style.width = (100 * f).toFixed(1) + '%';
  return h('div', {class: 'bar', role: 'progressbar', 'aria-valuenow': Math.round(100 * f),
    'aria-valuemin': 0, 'aria-valuemax': 100}, span);
}

// A duration in seconds as people read it: '40 s', '3 min', '1.5 h'.
function duration(r) {
  return r < 90 ? Math.ceil(r) + ' s' : r < 5400 ? Math.round(r / 60) + ' min' : (r / 3600).toFixed(1) + ' h';
}

// The daemon's estimate of the time a job has left (its whole run, not the
// current stage), as ' · ~3 min left'; '' while it has none.
function left(p) {
  const r = p && typeof p.remaining_seconds === 'number' ? p.remaining_seconds : null;
  return r === null ? '' : ' · ~' + duration(r) + ' left';
}

// A running job's stage as a line: 'training epoch 2 of 5: 40 of 120 steps
// (36% of the job) · ~3 min left'. A harden job's epochs count steps, its
// studies passes (as the CLI's bar says).
function stageText(p) {
  if (!p) return 'waiting for a worker';
  const unit = /^training/.test(p.phase || '') ? 'steps' : 'passes';
  const whole = typeof p.fraction === 'number' ? ' (' + Math.floor(100 * p.fraction) + '% of the job)' : '';
  return p.phase + ': ' + p.done + ' of ' + p.total + ' ' + unit + whole + left(p);
}

function errorBox(e) {
  return h('p', {class: 'error'}, e instanceof ApiError ? e.message : 'Error: ' + e.message);
}

function later(fn, ms) {
  clearTimeout(timer);
  timer = setTimeout(fn, ms);
}

// --- #/jobs --------------------------------------------------------------

// A job's name and labels as table cell content.
function jobTitle(j) {
  const labels = Object.entries(j.labels || {});
  return [j.name ? h('strong', {'data-testid': 'job-name'}, j.name) : h('span', {class: 'muted'}, 'unnamed'),
    labels.length ? h('div', {class: 'labels'}, labels.map(([k, v]) =>
      h('span', {class: 'label', 'data-label': k}, k + '=' + v))) : null];
}

// The headline cells of a job (the store keeps them with the job): clean
// accuracy, gradient and random accuracy at the largest radius of the
// first setting, and the critical radius or the flips to target.
function headlineCells(j) {
  const x = j.headline || {};
  const at = typeof x.epsilon === 'number' ? (x.norm || '') + ' ε=' + sig(x.epsilon) : '';
  return [h('td', {class: 'num', 'data-h': 'clean'}, pct(x.clean_accuracy)),
    h('td', {class: 'num', 'data-h': 'gradient', title: at}, pct(x.gradient_accuracy)),
    h('td', {class: 'num', 'data-h': 'random', title: at}, pct(x.random_accuracy)),
    h('td', {class: 'num', 'data-h': 'critical'}, typeof x.critical_epsilon === 'number' ? sig(x.critical_epsilon)
      : typeof x.flips_to_target === 'number' ? x.flips_to_target + ' flips' : '–')];
}

// The ticked jobs are in the URL (#/jobs?selected=A,B), so that the live
// refresh and a reload keep them; replaceState, not a new history entry per tick.
function jobsHash(picked) {
  return '#/jobs' + (picked.size ? '?selected=' + [...picked].map(encodeURIComponent).join(',') : '');
}

async function jobsView(selected, cursor, rows) {
  const list = await api('GET', '/v1/jobs?limit=50' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : ''));
  const items = (rows || []).concat(list.items);
  const body = h('tbody');
  const picked = new Set(selected || []);
  const compare = h('button', {class: 'secondary', 'data-testid': 'compare-selected', disabled: picked.size < 2,
    onclick: () => { location.hash = '#/compare/' + [...picked].join(','); }}, 'Compare selected');
  const tick = (id, on) => {
    if (on) picked.add(id); else picked.delete(id);
    compare.disabled = picked.size < 2;
    history.replaceState(null, '', jobsHash(picked));
  };
  for (const j of items) {
    const p = j.progress;
    const box = j.status === 'succeeded' ? h('input', {type: 'checkbox', 'data-compare': j.id,
      'aria-label': 'compare ' + (j.name || j.id), checked: picked.has(j.id), onclick: (ev) => ev.stopPropagation(),
      onchange: (ev) => tick(j.id, ev.target.checked)}) : null;
    body.append(h('tr', {class: 'link', 'data-job-id': j.id, 'data-status': j.status,
      onclick: () => { location.hash = '#/jobs/' + j.id; }},
      h('td', {}, box),
      h('td', {}, jobTitle(j), h('div', {}, h('a', {href: '#/jobs/' + j.id, class: 'mono small'}, j.id))),
      h('td', {}, j.kind),
      h('td', {}, badge(j.status)),
      h('td', {}, j.status === 'running' ? [progressBar(p), h('small', {class: 'muted', 'data-testid': 'eta'}, p ? p.phase + left(p) : '')] : ''),
      headlineCells(j),
      h('td', {}, when(j.created_at))));
  }
  const table = h('table', {'data-testid': 'jobs'},
    h('thead', {}, h('tr', {}, h('th', {}, ''), h('th', {}, 'Job'), h('th', {}, 'Kind'), h('th', {}, 'Status'),
      h('th', {}, 'Progress'), h('th', {class: 'num'}, 'clean'),
      h('th', {class: 'num', title: 'at the largest radius'}, 'gradient'),
      h('th', {class: 'num', title: 'at the largest radius'}, 'random'),
      h('th', {class: 'num'}, 'critical ε / flips'), h('th', {}, 'Created'))), body);
  view.replaceChildren(h('h1', {}, 'Jobs'),
    h('div', {class: 'card'}, items.length ? [table, compare] : h('p', {class: 'muted'},
      'No jobs yet. ', h('a', {href: '#/new'}, 'Start a study.')),
    list.next_cursor ? h('button', {class: 'secondary', onclick: () => jobsView([...picked], list.next_cursor, items)},
      'More') : null));
  // live while something still runs; the selection is in the URL
  if (items.some((j) => !finished(j.status))) later(() => route(), 2000);
}

// --- #/new: uploads and a job ----------------------------------------------

function describeModel(m) {
  return (m.name ? m.name + ' · ' : '') + shortId(m.id) + ' · ' + (m.parameters || 0).toLocaleString() + ' parameters · ' +
    (m.ops || []).join(', ');
}

function describeDataset(d) {
  return (d.name ? d.name + ' · ' : '') + shortId(d.id) + ' · ' + (d.samples || 0).toLocaleString() + ' samples · shape [' +
    (d.shape || []).join('×') + '] · ' + d.classes + ' classes' +
    (d.labels === 'per_token' ? ' · ' + (d.tokens || 0).toLocaleString() + ' labelled tokens' : '');
}

async function newView() {
  const [models, datasets] = await Promise.all([api('GET', '/v1/models?limit=500'),
    api('GET', '/v1/datasets?limit=500')]);
  const modelOut = h('div', {class: 'result'});
  const dataOut = h('div', {class: 'result'});
  const jobOut = h('div', {class: 'result'});

  const modelFile = h('input', {type: 'file', id: 'model-file', accept: '.onnx', required: true});
  const modelForm = h('form', {onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const m = await upload('/v1/models?name=' + encodeURIComponent(modelFile.files[0].name), modelFile.files[0],
        'application/octet-stream', uploadProgress(modelOut, 'model'));
      modelOut.replaceChildren('Stored: ' + describeModel(m));
      newView();
    } catch (e) { modelOut.replaceChildren(errorBox(e)); }
  }}, h('label', {for: 'model-file'}, 'ONNX file'), modelFile, h('button', {type: 'submit'}, 'Upload model'),
  modelOut);

  const xFile = h('input', {type: 'file', id: 'inputs-file', required: true});
  const yFile = h('input', {type: 'file', id: 'labels-file'});
  const dataForm = h('form', {onsubmit: async (ev) => {
    ev.preventDefault();
    const form = new FormData();
    form.append('inputs', xFile.files[0]);
    if (yFile.files[0]) form.append('labels', yFile.files[0]);
    try {
      // the form's inputs part carries its file name, which names the dataset
      const d = await upload('/v1/datasets', form, null, uploadProgress(dataOut, 'dataset'));
      dataOut.replaceChildren('Stored: ' + describeDataset(d));
      newView();
    } catch (e) { dataOut.replaceChildren(errorBox(e)); }
  }}, h('label', {for: 'inputs-file'}, 'Inputs (IDX, NPY, CSV or safetensors)'), xFile,
  h('label', {for: 'labels-file'}, 'Labels (not needed for CSV and safetensors)'), yFile,
  h('button', {type: 'submit'}, 'Upload dataset'), dataOut);

  const pick = (id, items, describe) => h('select', {id, required: true},
    items.map((it) => h('option', {value: it.id}, describe(it))));
  const field = (id, label, value, type) => [h('label', {for: id}, label),
    h('input', {id, type: type || 'text', value})];
  const checks = (name, values, on) => h('fieldset', {}, h('legend', {}, name),
    values.map((v) => h('label', {}, h('input', {type: 'checkbox', name, value: v, checked: on.includes(v)}), v)));

  const jobForm = h('form', {onsubmit: async (ev) => {
    ev.preventDefault();
    const val = (id) => document.getElementById(id).value.trim();
    const checked = (name) => [...jobForm.querySelectorAll('input[name="' + name + '"]:checked')]
      .map((i) => i.value);
    const spec = {
      kind: 'analyze', model: val('job-model'), dataset: val('job-dataset'), seed: Number(val('job-seed')),
      corruption: {norms: checked('norms'), groups: checked('groups'),
        epsilons: val('job-eps').split(',').map((s) => Number(s.trim())).filter((x) => !Number.isNaN(x)),
        sparsity: [Number(val('job-sparsity'))], random_trials: Number(val('job-trials'))},
    };
    if (val('job-limit')) spec.limit = Number(val('job-limit'));
    if (val('job-name')) spec.name = val('job-name');
    const labels = val('job-labels').split(',').map((x) => x.trim()).filter((x) => x.includes('='));
    if (labels.length) spec.labels = Object.fromEntries(labels.map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)]));
    if (document.getElementById('job-harden').checked) {
      // a harden job: the same study before and after fine-tuning with ACT
      spec.kind = 'harden';
      spec.training = {dataset: val('job-train'), epochs: Number(val('job-epochs')), lr: Number(val('job-lr')),
        schedule: 'cosine', act: {norm: 'l2', epsilon: Number(val('job-act-eps'))}};
    }
    jobOut.replaceChildren('Submitting…');
    try {
      const j = await api('POST', '/v1/jobs', {json: spec});
      location.hash = '#/jobs/' + j.id;
    } catch (e) {
      const list = e.problem && e.problem.errors ? e.problem.errors.map((x) => h('li', {}, x.pointer + ': ' +
        x.detail)) : [];
      jobOut.replaceChildren(errorBox(e), list.length ? h('ul', {}, list) : '');
    }
  }},
  field('job-name', 'Name (optional)', ''),
  field('job-labels', 'Labels (optional, key=value, comma-separated)', ''),
  h('label', {for: 'job-model'}, 'Model'), pick('job-model', models.items, describeModel),
  h('label', {for: 'job-dataset'}, 'Dataset'), pick('job-dataset', datasets.items, describeDataset),
  field('job-eps', 'Radii ε (comma-separated)', '0.05, 0.1, 0.25, 0.5, 1, 2'),
  checks('norms', ['l1', 'l2', 'linf'], ['l2']),
  checks('groups', ['model', 'layer', 'tensor'], ['model', 'layer']),
  field('job-trials', 'Random trials per radius', '5', 'number'),
  field('job-sparsity', 'Sparsity (weights changed; 0 = all)', '0', 'number'),
  field('job-limit', 'Samples (empty = all)', '2000', 'number'),
  field('job-seed', 'Seed', '1', 'number'),
  h('fieldset', {}, h('legend', {}, 'Hardening (optional)'),
    h('label', {}, h('input', {type: 'checkbox', id: 'job-harden'}),
      'Fine-tune with adversarial corruption-resistant training, then study again'),
    h('label', {for: 'job-train'}, 'Training dataset'), pick('job-train', datasets.items, describeDataset),
    field('job-epochs', 'Epochs', '3', 'number'), field('job-lr', 'Learning rate (SGD, cosine)', '0.01', 'number'),
    field('job-act-eps', 'ACT radius ε (L2; 0 = plain fine-tuning, the control)', '0.3', 'number')),
  h('button', {type: 'submit', disabled: !models.items.length || !datasets.items.length}, 'Start the study'),
  jobOut);

  view.replaceChildren(h('h1', {}, 'New study'), h('div', {class: 'grid'},
    h('section', {class: 'card'}, h('h2', {}, '1. Model'), modelForm),
    h('section', {class: 'card'}, h('h2', {}, '2. Dataset'), dataForm)),
  h('section', {class: 'card'}, h('h2', {}, '3. Corruption study'), jobForm));
}

// --- #/jobs/<id> -----------------------------------------------------------

async function chartCards(id) {
  const list = await api('GET', '/v1/jobs/' + id + '/charts');
  const cards = [];
  for (const c of list.items) {
    const text = await api('GET', c.href);
    // inline, so the token travels with the request and the SVG is in the DOM
    const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
    const svg = document.importNode(doc.documentElement, true);
    cards.push(h('figure', {class: 'card chart', 'data-testid': 'chart', 'data-chart': c.name},
      h('h2', {}, c.title), svg));
  }
  return cards;
}

function resultsTable(report) {
  const rows = (report.results || []).filter((r) => r.group === 'model');
  // a sequence model's reports carry perplexities beside the losses
  const seq = report.clean && 'perplexity' in report.clean;
  // a curvature block adds the second-order estimate beside the realised change
  const so = rows.some((r) => typeof r.second_order === 'number');
  const heads = ['norm', 'ε', 'sparsity', 'gradient accuracy', 'loss change'].concat(
    so ? ['first-order', 'second-order'] : [], seq ? ['gradient perplexity'] : [],
    ['random mean accuracy, 95%', 'random worst']);
  return h('table', {'data-testid': 'results'},
    h('thead', {}, h('tr', {}, heads.map((t, i) => h('th', {class: i ? 'num' : ''}, t)))),
    h('tbody', {}, rows.map((r) => h('tr', {},
      h('td', {}, String(r.norm)), h('td', {class: 'num'}, sig(r.epsilon)), h('td', {class: 'num'}, r.sparsity),
      h('td', {class: 'num'}, pct(r.gradient && r.gradient.accuracy)),
      h('td', {class: 'num'}, sig(r.gradient && r.gradient.loss_change)),
      so ? h('td', {class: 'num'}, sig(r.first_order)) : null,
      so ? h('td', {class: 'num', 'data-h': 'second_order'}, sig(r.second_order)) : null,
      seq ? h('td', {class: 'num'}, sig(r.gradient && r.gradient.perplexity)) : null,
      h('td', {class: 'num'}, pctCi(r.random)),
      h('td', {class: 'num'}, pct(r.random && r.random.accuracy_min))))));
}

// The ranking of one setting (norm, ε, sparsity, block): the one that ranks
// the most groups with a loss change, the larger ε on a tie, as the ranking
// chart picks it. Its top 20 by rank; a 12-block model ranks ~50 layers, so
// a line says how many more the JSON report holds.
const RANK_ROWS = 20;
function rankingTable(report) {
  // a block with "critical" ranks by critical radius: criticalTable shows it
  const all = (report.ranking || []).filter((r) => r.loss_change !== null && !r.by);
  if (!all.length) return null;
  const key = (r) => [r.norm, r.epsilon, r.sparsity, r.block].join('|');
  const count = new Map();
  for (const r of all) count.set(key(r), (count.get(key(r)) || 0) + 1);
  let best = all[0];
  for (const r of all) {
    const c = count.get(key(r)), b = count.get(key(best));
    if (c > b || (c === b && r.epsilon > best.epsilon)) best = r;
  }
  const setting = all.filter((r) => key(r) === key(best)).sort((a, b) => a.rank - b.rank);
  const rank = setting.slice(0, RANK_ROWS);
  const more = setting.length - rank.length;
  const table = h('table', {'data-testid': 'ranking'},
    h('thead', {}, h('tr', {}, ['rank', 'group', 'setting', 'loss change', 'accuracy']
      .map((t, i) => h('th', {class: i === 1 || i === 2 ? '' : 'num'}, t)))),
    h('tbody', {}, rank.map((r) => h('tr', {}, h('td', {class: 'num'}, r.rank),
      h('td', {class: 'mono group'}, r.group), h('td', {}, r.norm + ' ε=' + sig(r.epsilon)),
      h('td', {class: 'num'}, sig(r.loss_change)), h('td', {class: 'num'}, pct(r.accuracy))))));
  const others = all.length - setting.length;
  if (!more && !others) return table;
  return h('div', {}, table, h('p', {class: 'muted', 'data-testid': 'ranking-more'},
    (more ? more + ' more group' + (more === 1 ? '' : 's') + ' in this setting' : 'All groups of this setting') +
    (others ? '; ' + others + ' ' + (others === 1 ? 'entry' : 'entries') + ' for other settings' : '') +
    ': the JSON report has them all.'));
}

// The critical radii: per group, norm and sparsity, where accuracy first
// falls below clean - drop, gradient against random (null: not reached).
function criticalTable(report) {
  const rows = report.critical || [];
  if (!rows.length) return null;
  const eps = (side) => (side && side.epsilon !== null && side.epsilon !== undefined ? sig(side.epsilon) : '-');
  return h('section', {class: 'card'}, h('h2', {}, 'Critical radius'),
    h('p', {class: 'muted'}, 'Accuracy below clean − ' + rows[0].accuracy_drop + ', to ' +
      rows[0].tolerance + ' relative; ratio = random / gradient.'),
    h('table', {'data-testid': 'critical'},
      h('thead', {}, h('tr', {}, ['group', 'norm', 'sparsity', 'gradient ε*', 'random ε*', 'ratio']
        .map((t, i) => h('th', {class: i < 2 ? '' : 'num'}, t)))),
      h('tbody', {}, rows.map((r) => h('tr', {},
        h('td', {class: 'mono group'}, r.group), h('td', {}, String(r.norm)),
        h('td', {class: 'num'}, r.sparsity), h('td', {class: 'num'}, eps(r.gradient)),
        h('td', {class: 'num'}, eps(r.random)),
        h('td', {class: 'num'}, r.ratio === null ? '-' : sig(r.ratio)))))));
}

// The Hessian's top eigenvalues and trace: the model's row, then each group's.
function curvatureCard(report) {
  const c = report.curvature;
  if (!c) return null;
  const row = (name, g) => h('tr', {},
    h('td', {class: 'mono group'}, name), h('td', {class: 'num'}, g.parameters),
    h('td', {class: 'num', 'data-h': 'eigenvalues'}, (g.eigenvalues || []).map(sig).join(', ')),
    h('td', {class: 'num'}, g.trace === null ? '-' : sig(g.trace)),
    h('td', {class: 'num'}, g.trace_ci95 ? '[' + sig(g.trace_ci95[0]) + ', ' + sig(g.trace_ci95[1]) + ']' : '-'),
    h('td', {class: 'num'}, g.converged ? 'yes' : 'no'), h('td', {class: 'num'}, g.hvp_count));
  return h('section', {class: 'card'}, h('h2', {}, 'Curvature'),
    h('p', {class: 'muted'}, 'The Hessian of the mean loss: top eigenvalues (Lanczos) and trace (Hutchinson, ' +
      c.trace_samples + ' samples, 95% interval); products: Hessian-vector products used.'),
    h('table', {'data-testid': 'curvature'},
      h('thead', {}, h('tr', {}, ['group', 'parameters', 'top eigenvalues', 'trace', '95% interval', 'converged',
        'products'].map((t, i) => h('th', {class: i ? 'num' : ''}, t)))),
      h('tbody', {}, [row('model', c)].concat(Object.entries(c.groups || {}).map(([n, g]) => row(n, g))))));
}

// The bit-fault study: each format as stored, the random bit errors of the
// whole model (every group's rows are in the JSON report and the HTML page),
// the bit positions that cost accuracy, and the searches.
function faultsCard(report) {
  const f = report.faults;
  if (!f) return null;
  const card = h('section', {class: 'card', 'data-testid': 'faults'}, h('h2', {}, 'Bit faults'));
  const table = (id, heads, rows) => h('table', {'data-testid': id},
    h('thead', {}, h('tr', {}, heads.map((t, i) => h('th', {class: i < 2 ? '' : 'num'}, t)))),
    h('tbody', {}, rows));
  const q = Object.entries(f.quantized || {});
  if (q.length) {
    card.append(h('h3', {}, 'The model as stored'), table('faults-formats', ['format', '', 'accuracy', 'loss'],
      q.map(([fmt, v]) => h('tr', {'data-format': fmt}, h('td', {}, fmt), h('td', {}),
        h('td', {class: 'num'}, pct(v.accuracy)), h('td', {class: 'num'}, sig(v.loss))))));
  }
  const random = (f.random || []).filter((r) => r.group === 'model');
  if (random.length) {
    card.append(h('h3', {}, 'Random bit errors, the whole model'), table('faults-random',
      ['format', 'ber', 'flips', 'accuracy', '95% interval', 'worst'],
      random.map((r) => h('tr', {'data-format': r.format, 'data-ber': String(r.ber)},
        h('td', {}, r.format), h('td', {}, sig(r.ber)), h('td', {class: 'num'}, sig(r.flips_mean)),
        h('td', {class: 'num'}, pct(r.accuracy_mean)),
        h('td', {class: 'num'}, r.accuracy_ci95 ? pct(r.accuracy_ci95[0]) + ' – ' + pct(r.accuracy_ci95[1]) : '–'),
        h('td', {class: 'num'}, pct(r.accuracy_min))))));
  }
  const search = f.search || [];
  if (search.length) {
    card.append(h('h3', {}, 'Worst-case bit search'), table('faults-search',
      ['format', 'group', 'method', 'flips', 'accuracy', 'reached'],
      search.map((r) => {
        const last = r.flips.length ? r.flips[r.flips.length - 1].accuracy : r.clean.accuracy;
        return h('tr', {'data-format': r.format, 'data-method': r.method},
          h('td', {}, r.format), h('td', {class: 'mono group'}, r.group), h('td', {class: 'num'}, r.method),
          h('td', {class: 'num'}, r.flips.length), h('td', {class: 'num'}, pct(last)),
          h('td', {class: 'num'}, r.reached ? 'yes' : 'no'));
      })));
  }
  return card;
}

// A download that carries the token: fetch, then a Blob URL.
async function download(path, name) {
  const headers = token() ? {Authorization: 'Bearer ' + token()} : {};
  const resp = await fetch(path, {headers});
  if (!resp.ok) return showBanner('Download failed: HTTP ' + resp.status);
  const url = URL.createObjectURL(await resp.blob());
  const a = h('a', {href: url, download: name});
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

async function jobView(id) {
  const j = await api('GET', '/v1/jobs/' + encodeURIComponent(id));
  const p = j.progress;
  const facts = h('dl', {class: 'facts'},
    h('dt', {}, 'Name'), h('dd', {}, jobTitle(j)),
    h('dt', {}, 'Status'), h('dd', {}, badge(j.status)),
    h('dt', {}, 'Kind'), h('dd', {}, j.kind),
    h('dt', {}, 'Attempts'), h('dd', {}, j.attempts),
    h('dt', {}, 'Node'), h('dd', {}, j.node || '–'),
    h('dt', {}, 'Created'), h('dd', {}, when(j.created_at)),
    h('dt', {}, 'Started'), h('dd', {}, when(j.started_at)),
    h('dt', {}, 'Finished'), h('dd', {}, when(j.finished_at)));
  const head = h('section', {class: 'card'}, facts);
  if (!finished(j.status)) {
    head.append(h('p', {'data-testid': 'eta'}, stageText(p)),
      progressBar(p), h('button', {class: 'danger', onclick: async () => {
        try { await api('POST', '/v1/jobs/' + j.id + '/cancel'); } catch (e) { head.append(errorBox(e)); }
        route();
      }}, 'Cancel'));
  }
  if (j.error) head.append(h('p', {class: 'error'}, j.error.detail || j.error.title));
  const root = h('div', {'data-testid': 'job', 'data-job-id': j.id, 'data-status': j.status},
    h('h1', {}, j.name ? j.name + ' ' : 'Job ', h('span', {class: 'mono muted'}, j.id)), head);
  view.replaceChildren(root);
  if (!finished(j.status)) return later(() => route(), 1000);
  if (j.status !== 'succeeded') return;

  const report = await api('GET', '/v1/jobs/' + j.id + '/report');
  // the uploads the study used, by name where they have one
  const spec = report.spec || {};
  for (const [what, path, id] of [['Model', 'models', spec.model], ['Dataset', 'datasets', spec.dataset]]) {
    if (typeof id !== 'string') continue;
    const u = await api('GET', '/v1/' + path + '/' + id).catch(() => ({}));
    facts.append(h('dt', {}, what), h('dd', {'data-testid': 'upload-' + path},
      u.name ? [u.name, ' ', h('span', {class: 'mono muted'}, shortId(id))] : h('span', {class: 'mono'}, id)));
  }
  const actions = h('p', {}, h('button', {class: 'secondary', onclick: () =>
    download('/v1/jobs/' + j.id + '/report', j.id + '-report.json')}, 'Download the JSON report'));
  if (report.before) {
    actions.append(' ', h('a', {class: 'button secondary', 'data-testid': 'compare-before-after',
      href: '#/compare/' + j.id}, 'Compare before and after'));
  }
  if (j.links && j.links.model) {
    actions.append(' ', h('button', {class: 'secondary', onclick: () =>
      download(j.links.model, j.id + '-hardened.onnx')}, 'Download the hardened model'));
  }
  const study = report.after || report; // a harden job: the hardened model's study
  const clean = study.clean || {};
  root.append(h('section', {class: 'card'}, h('h2', {}, report.before ? 'Hardened model' : 'Clean model'),
    h('p', {}, 'accuracy ' + pct(clean.accuracy) + ', loss ' + sig(clean.loss) +
      ('perplexity' in clean ? ', perplexity ' + sig(clean.perplexity) : '') + ' on ' +
      ((report.dataset && report.dataset.samples) || '?') + ' samples' +
      (report.dataset && report.dataset.tokens ? ' (' + report.dataset.tokens + ' labelled tokens)' : '') +
      (clean.non_finite ? ', the loss not finite for ' + clean.non_finite : '') +
      (report.before ? ' (before hardening: ' + pct(report.before.clean.accuracy) + ')' : '')), actions));
  const crit = criticalTable(study);
  if (crit) root.append(crit);
  try {
    root.append(...await chartCards(j.id));
  } catch (e) { root.append(errorBox(e)); }
  if (report.before) {
    root.append(h('section', {class: 'card'}, h('h2', {}, 'Before hardening'), resultsTable(report.before)));
  }
  // a faults-only study ("corruption": []) has no results to list
  if ((study.results || []).length) {
    root.append(h('section', {class: 'card'}, h('h2', {}, report.before ? 'After hardening' : 'The whole model'),
      resultsTable(study)));
  }
  const rank = rankingTable(study);
  if (rank) root.append(h('section', {class: 'card'}, h('h2', {}, 'The most fragile groups'), rank));
  const faults = faultsCard(study);
  if (faults) root.append(faults);
  const curvature = curvatureCard(study);
  if (curvature) root.append(curvature);
}

// --- #/compare/<id>,<id>... -----------------------------------------------

const COLORS = ['#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00', '#56b4e9', '#000000', '#f0e442'];
const SVGNS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// Accuracy against ε of every study, the model-wide rows of one norm: a
// solid line per study for the gradient corruption, dashed for random.
function overlayChart(cmp, names, norm) {
  const rows = (cmp.results || []).filter((r) => r.group === 'model' && r.norm === norm)
    .sort((a, b) => a.epsilon - b.epsilon);
  if (!rows.length) return null;
  const W = 720, H = 340, L = 56, R = 180, T = 20, B = 44;
  const xs = rows.map((r) => r.epsilon);
  const lo = Math.log10(Math.min(...xs)), hi = Math.log10(Math.max(...xs));
  const x = (e) => L + (hi > lo ? (Math.log10(e) - lo) / (hi - lo) : 0.5) * (W - L - R);
  const y = (a) => T + (1 - a) * (H - T - B);
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, role: 'img', 'data-testid': 'compare-chart', 'data-norm': norm});
  svg.append(s('title', {}, 'accuracy against ε (' + norm + '), every study'));
  for (const a of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(s('line', {x1: L, x2: W - R, y1: y(a), y2: y(a), stroke: '#dfe3e8'}),
      s('text', {x: L - 6, y: y(a) + 4, 'text-anchor': 'end', 'font-size': 11, fill: '#5b6675'}, (100 * a) + '%'));
  }
  for (const e of xs) {
    svg.append(s('text', {x: x(e), y: H - B + 16, 'text-anchor': 'middle', 'font-size': 11, fill: '#5b6675'}, sig(e)));
  }
  svg.append(s('text', {x: (L + W - R) / 2, y: H - 8, 'text-anchor': 'middle', 'font-size': 12}, 'ε (' + norm + ', log scale)'));
  names.forEach((name, k) => {
    for (const [kind, col, dash] of [['gradient', 'gradient_accuracy', ''], ['random', 'random_accuracy_mean', '6 4']]) {
      const pts = rows.filter((r) => typeof (r[col] || [])[k] === 'number').map((r) => [x(r.epsilon), y(r[col][k]), r]);
      if (!pts.length) continue;
      const line = s('polyline', {points: pts.map((p) => p[0].toFixed(1) + ',' + p[1].toFixed(1)).join(' '),
        fill: 'none', stroke: COLORS[k % COLORS.length], 'stroke-width': 2, 'data-study': k, 'data-kind': kind});
      if (dash) line.setAttribute('stroke-dasharray', dash);
      svg.append(line);
      for (const p of pts) {
        svg.append(s('circle', {cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: 3, fill: COLORS[k % COLORS.length],
          'data-study': k, 'data-kind': kind, 'data-epsilon': p[2].epsilon, 'data-accuracy': p[2][col][k]},
        s('title', {}, name + ', ' + kind + ', ε=' + sig(p[2].epsilon) + ': ' + pct(p[2][col][k]))));
      }
    }
  });
  names.forEach((name, k) => {
    const ly = T + 10 + k * 36;
    svg.append(s('line', {x1: W - R + 12, x2: W - R + 36, y1: ly, y2: ly, stroke: COLORS[k % COLORS.length], 'stroke-width': 2}),
      s('line', {x1: W - R + 12, x2: W - R + 36, y1: ly + 14, y2: ly + 14, stroke: COLORS[k % COLORS.length],
        'stroke-width': 2, 'stroke-dasharray': '6 4'}),
      s('text', {x: W - R + 42, y: ly + 4, 'font-size': 12, 'data-legend': k}, name + ' gradient'),
      s('text', {x: W - R + 42, y: ly + 18, 'font-size': 12}, 'random'));
  });
  return svg;
}

async function compareView(ids) {
  const cmp = await api('GET', '/v1/compare?jobs=' + ids.map(encodeURIComponent).join(','));
  // the studies' names: the job's name, else its id; a harden job's two
  // studies are its before and after
  const jobs = await Promise.all([...new Set(ids)].map((id) => api('GET', '/v1/jobs/' + encodeURIComponent(id))
    .catch(() => ({id}))));
  const byId = Object.fromEntries(jobs.map((j) => [j.id, j]));
  const jobOf = (st) => byId[st.label] || (ids.length === 1 ? byId[ids[0]] : null);
  const names = cmp.studies.map((st) => {
    const j = jobOf(st);
    const base = j ? (j.name || shortId(j.id)) : (st.label || st.role);
    return cmp.studies.length > ids.length ? base + ' ' + st.role : base;
  });
  const root = h('div', {'data-testid': 'compare'}, h('h1', {}, 'Compare ', names.join(' · ')));
  root.append(h('section', {class: 'card'}, h('table', {'data-testid': 'compare-studies'},
    h('thead', {}, h('tr', {}, ['study', 'job', 'clean accuracy', 'clean loss', 'parameters', 'samples']
      .map((t, i) => h('th', {class: i > 1 ? 'num' : ''}, t)))),
    h('tbody', {}, cmp.studies.map((st, k) => h('tr', {'data-study': k},
      h('td', {}, h('span', {class: 'swatch', style: 'background:' + COLORS[k % COLORS.length]}), names[k]),
      h('td', {}, jobOf(st) ? h('a', {href: '#/jobs/' + jobOf(st).id, class: 'mono'}, shortId(jobOf(st).id)) : ''),
      h('td', {class: 'num', 'data-clean-accuracy': st.clean.accuracy}, pct(st.clean.accuracy)),
      h('td', {class: 'num'}, sig(st.clean.loss)),
      h('td', {class: 'num'}, st.parameters === null ? '–' : Number(st.parameters).toLocaleString()),
      h('td', {class: 'num'}, st.samples === null ? '–' : st.samples)))))));
  const norms = [...new Set((cmp.results || []).filter((r) => r.group === 'model').map((r) => r.norm))];
  for (const norm of norms) {
    root.append(h('figure', {class: 'card chart'}, h('h2', {}, 'Accuracy against ε, ' + norm +
      ' (solid: gradient, dashed: random)'), overlayChart(cmp, names, norm)));
  }
  const diffs = cmp.differences || [];
  // the uploads the specs name differently, by their names where they have one
  const uploadPaths = {'/model': 'models', '/dataset': 'datasets', '/training/dataset': 'datasets'};
  const uploadName = {};
  await Promise.all(diffs.filter((d) => uploadPaths[d.pointer]).flatMap((d) => d.values
    .filter((v) => typeof v === 'string').map((v) => api('GET', '/v1/' + uploadPaths[d.pointer] + '/' +
      encodeURIComponent(v)).then((u) => { if (u && u.name) uploadName[v] = u.name; }).catch(() => null))));
  const cell = (d, v) => (uploadPaths[d.pointer] && uploadName[v]
    ? h('td', {'data-upload': v}, uploadName[v], ' ', h('span', {class: 'mono muted'}, shortId(v)))
    : h('td', {class: 'mono'}, v === null ? '–' : JSON.stringify(v)));
  root.append(h('section', {class: 'card'}, h('h2', {}, 'What the studies differ in'),
    diffs.length ? h('table', {'data-testid': 'compare-differs'},
      h('thead', {}, h('tr', {}, h('th', {}, 'field'), names.map((n) => h('th', {}, n)))),
      h('tbody', {}, diffs.map((d) => h('tr', {'data-pointer': d.pointer}, h('td', {class: 'mono'}, d.pointer),
        d.values.map((v) => cell(d, v))))))
      : h('p', {class: 'muted', 'data-testid': 'compare-differs'}, 'Their specs are the same.')));
  // the rankings side by side: the groups of the setting most studies rank
  const rank = (cmp.ranking || []).filter((r) => (r.loss_change || []).some((v) => v !== null));
  if (rank.length) {
    const key = (r) => [r.norm, r.epsilon, r.sparsity].join('|');
    const count = new Map();
    for (const r of rank) count.set(key(r), (count.get(key(r)) || 0) + 1);
    let best = rank[0];
    for (const r of rank) if (count.get(key(r)) > count.get(key(best)) || (count.get(key(r)) === count.get(key(best)) && r.epsilon > best.epsilon)) best = r;
    const rows = rank.filter((r) => key(r) === key(best)).sort((a, b) => (a.rank[0] ?? 1e9) - (b.rank[0] ?? 1e9)).slice(0, RANK_ROWS);
    root.append(h('section', {class: 'card'}, h('h2', {}, 'The most fragile groups, ' + best.norm + ' ε=' + sig(best.epsilon)),
      h('table', {'data-testid': 'compare-ranking'},
        h('thead', {}, h('tr', {}, h('th', {}, 'group'), names.map((n) => h('th', {class: 'num'}, n + ' rank')),
          names.map((n) => h('th', {class: 'num'}, n + ' loss change')))),
        h('tbody', {}, rows.map((r) => h('tr', {}, h('td', {class: 'mono group'}, r.group),
          r.rank.map((v) => h('td', {class: 'num'}, v === null ? '–' : v)),
          r.loss_change.map((v) => h('td', {class: 'num'}, sig(v)))))))));
  }
  view.replaceChildren(root);
}

// --- routing ---------------------------------------------------------------

async function route() {
  clearTimeout(timer);
  const hash = location.hash || '#/jobs';
  try {
    const m = hash.match(/^#\/jobs\/([^/]+)$/);
    const c = hash.match(/^#\/compare\/([^/]+)$/);
    if (m) await jobView(decodeURIComponent(m[1]));
    else if (c) await compareView(decodeURIComponent(c[1]).split(',').filter(Boolean));
    else if (hash === '#/new') await newView();
    else {
      const sel = hash.match(/^#\/jobs\?(?:.*&)?selected=([^&]*)/);
      await jobsView(sel ? sel[1].split(',').map(decodeURIComponent).filter(Boolean) : []);
    }
  } catch (e) {
    if (e instanceof ApiError) view.replaceChildren(errorBox(e));
    else later(() => route(), 3000); // the daemon is down: the banner says so
  }
}

window.addEventListener('hashchange', route);
route();
