// The reeld console: the public API only, from the page's own origin. The API key stays in
// this browser (localStorage) and goes only to the API, as a bearer token.
'use strict';
const $ = (id) => document.getElementById(id);
let key = localStorage.getItem('reeld.key') || '';
let cursor = null;
let current = null;

function auth() {
  return key ? {Authorization: 'Bearer ' + key} : {};
}

async function api(path, opts = {}) {
  const r = await fetch(path, {...opts, headers: {...auth(), ...(opts.headers || {})}});
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = {raw: text}; }
  if (!r.ok) {
    const msg = body && body.error ? body.error.message : r.status + ' ' + r.statusText;
    const err = new Error(msg);
    err.status = r.status;
    throw err;
  }
  return body;
}

function say(text, bad) {
  $('status').textContent = text;
  $('status').className = bad ? 'error' : '';
}

// One PUT with upload progress (fetch has none): resolves to the response's ETag.
function put(url, blob, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('PUT', url);
    for (const [k, v] of Object.entries(headers || {})) x.setRequestHeader(k, v);
    x.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded); };
    x.onload = () => (x.status >= 200 && x.status < 300)
      ? resolve(x.getResponseHeader('ETag'))
      : reject(new Error('the upload was refused (' + x.status + '): ' + x.responseText.slice(0, 200)));
    x.onerror = () => reject(new Error('the upload failed (network or CORS)'));
    x.send(blob);
  });
}

async function upload(file) {
  $('up-bar').value = 0;
  $('job-bar').value = 0;
  $('job-text').textContent = '';
  say('asking for an upload URL…');
  const type = file.type && file.type.startsWith('video/') ? file.type : 'video/mp4';
  const up = await api('/api/uploads', {method: 'POST', headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({filename: file.name, content_type: type, size: file.size})});
  const id = up.asset_id;
  const show = (done) => {
    $('up-bar').value = Math.floor(done * 100 / Math.max(1, file.size));
    $('up-text').textContent = (done / 1048576).toFixed(1) + ' / ' + (file.size / 1048576).toFixed(1) + ' MiB';
  };
  const started = performance.now();
  if (up.upload.url) {
    say('uploading…');
    await put(up.upload.url, file, up.upload.headers, show);
  } else {
    // Multipart (S3 mode, large files): the parts one after another, then complete.
    const parts = [];
    let sent = 0;
    for (const p of up.upload.parts) {
      const from = (p.n - 1) * up.upload.part_size;
      const slice = file.slice(from, Math.min(file.size, from + up.upload.part_size));
      say('uploading part ' + p.n + ' of ' + up.upload.parts.length + '…');
      const etag = await put(p.url, slice, {}, (n) => show(sent + n));
      if (!etag) throw new Error('the storage did not expose ETag to this page (CORS ExposeHeaders)');
      sent += slice.size;
      parts.push({n: p.n, etag});
    }
    await api(up.upload.complete_url, {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({parts})});
  }
  show(file.size);
  const secs = (performance.now() - started) / 1000;
  $('up-text').textContent += ' in ' + secs.toFixed(1) + ' s';
  say('promoting…');
  await api('/api/assets/' + id + '/promote', {method: 'POST'});
  await follow(id);
}

// Shows one state of the asset; true once it is done (ready or failed).
async function shown(id, a) {
  const pct = Number(a.progress || 0);
  $('job-bar').value = a.state === 'ready' ? 100 : pct;
  $('job-text').textContent = a.state + (a.state === 'processing' ? ' ' + pct.toFixed(1) + '%' : '');
  if (a.state === 'ready') {
    say('ready');
    await play(id);
    refresh();
    return true;
  }
  if (a.state === 'failed' || a.state === 'expired') {
    say(a.state + ': ' + (a.error || 'no reason given'), true);
    refresh();
    return true;
  }
  say(a.state + '…');
  return false;
}

// Live progress from GET /api/assets/{id}/events, read with fetch (EventSource cannot send the
// bearer token). True when the stream showed the end; false when it is not available (429, an
// old server, a proxy that buffers): the caller polls instead.
async function followEvents(id) {
  let r;
  try {
    r = await fetch('/api/assets/' + id + '/events', {headers: auth()});
  } catch (e) {
    return false;
  }
  if (r.status !== 200 || !r.body) return false;
  $('job-text').dataset.via = 'events';
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    if (current !== id) { reader.cancel(); return true; }
    const {value, done} = await reader.read();
    if (done) return false;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
      if (data.length && await shown(id, JSON.parse(data.join('\n')))) {
        reader.cancel();
        return true;
      }
    }
  }
}

async function follow(id) {
  current = id;
  if (await followEvents(id)) return;
  $('job-text').dataset.via = 'polling';
  for (;;) {
    if (current !== id) return;
    if (await shown(id, await api('/api/assets/' + id))) return;
    await new Promise((ok) => setTimeout(ok, 500));
  }
}

async function play(id) {
  const pb = await api('/api/assets/' + id + '/playback');
  const a = await api('/api/assets/' + id);
  $('link').value = pb.url;
  $('details').textContent = JSON.stringify(a, null, 2);
  const v = $('video');
  if (v.canPlayType('application/vnd.apple.mpegurl')) {
    $('play-note').textContent = '';
    v.src = pb.url;
    v.play().catch(() => {});
  } else {
    $('play-note').textContent = 'This browser has no native HLS: open the link in an HLS player (hls.js, video.js, ffplay).';
  }
}

function row(a) {
  const tr = document.createElement('tr');
  const cells = [a.asset_id || a.id, a.filename || '', a.state || '', a.created_at || ''];
  cells.forEach((text, i) => {
    const td = document.createElement('td');
    td.textContent = text;
    if (i === 0) td.className = 'id';
    tr.appendChild(td);
  });
  const td = document.createElement('td');
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = a.state === 'ready' ? 'Play' : 'Follow';
  b.onclick = () => follow(cells[0]).catch((e) => say(e.message, true));
  td.appendChild(b);
  tr.appendChild(td);
  return tr;
}

async function list(more) {
  if (!more) {
    cursor = null;
    $('rows').textContent = '';
  }
  try {
    const q = '/api/assets?limit=20' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '');
    const page = await api(q);
    (page.assets || []).forEach((a) => $('rows').appendChild(row(a)));
    cursor = page.next_cursor || null;
    $('more').disabled = !cursor;
    $('list-note').textContent = '';
  } catch (e) {
    $('list-note').textContent = 'The list is not available: ' + e.message;
    $('more').disabled = true;
  }
}
const refresh = () => list(false);

$('key').value = key;
$('key-state').textContent = key ? 'A key is set for this browser.' : 'No key: works in the open embedded mode (loopback) only.';
$('key-form').onsubmit = (e) => {
  e.preventDefault();
  key = $('key').value.trim();
  localStorage.setItem('reeld.key', key);
  $('key-state').textContent = key ? 'A key is set for this browser.' : 'No key set.';
  refresh();
};
$('go').onclick = () => {
  const f = $('file').files[0];
  if (!f) { say('Pick a video file first.', true); return; }
  $('go').disabled = true;
  upload(f).catch((e) => say(e.message, true)).finally(() => { $('go').disabled = false; });
};
$('copy').onclick = () => { $('link').select(); navigator.clipboard && navigator.clipboard.writeText($('link').value); };
$('more').onclick = () => list(true);
$('refresh').onclick = refresh;
refresh();
