// TDS dashboard: plain ES2020, no dependencies, no network beyond this origin's /api and the OIDC
// provider the configuration names. Every string from the API reaches the page through textContent
// (the `el` helper below), never through innerHTML.
'use strict';

(() => {
  const TOKEN_KEY = 'tds.token';
  const ORG_KEY = 'tds.org';
  const OIDC_STATE = 'tds.oidc.state';
  const OIDC_VERIFIER = 'tds.oidc.verifier';
  const OIDC_TOKEN_ENDPOINT = 'tds.oidc.token_endpoint';
  const OIDC_RETURN = 'tds.oidc.return';
  const REFRESH_MS = 5000;
  // Used only when /api/tds/status cannot be read (the names EntityKind::as_str gives).
  const FALLBACK_KINDS = ['item', 'item_stock', 'location', 'price_book', 'price_book_rate', 'contact',
    'item_image', 'invoice', 'sales_order', 'bill', 'customer_payment', 'credit_note', 'vendor_payment',
    'purchase_order'];
  // Kinds POST /api/tds/sync refuses (kept by the stock poller, or synced with their parent).
  const NOT_SYNCABLE = new Set(['item_stock', 'price_book_rate']);
  const DIFF_CATEGORIES = ['missing_locally', 'deleted_in_zoho', 'stale', 'mismatched'];

  const state = {
    config: { oidc: null },
    orgs: [],
    org: null,
    kinds: null,
    page: null,
    param: null,
    seq: 0,
    loading: null,
    runStatus: null,
    timer: null,
    runs: [],
    healReady: false,
    started: false,
  };

  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  /** Builds an element; string children become text nodes, attributes are set, `on*` are listeners. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    applyAttrs(node, attrs);
    append(node, children);
    return node;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    applyAttrs(node, attrs);
    append(node, children);
    return node;
  }

  function applyAttrs(node, attrs) {
    if (!attrs) return;
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') {
        node.addEventListener(k.slice(2), v);
      } else if (k === 'dataset') {
        for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = String(dv);
      } else if (k === 'text') {
        node.textContent = String(v);
      } else {
        node.setAttribute(k, v === true ? '' : String(v));
      }
    }
  }

  function append(node, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  function setText(id, value) {
    const n = $(id);
    if (n) n.textContent = value === null || value === undefined ? '' : String(value);
  }

  function fill(id, ...children) {
    const n = $(id);
    if (!n) return;
    n.replaceChildren();
    append(n, children);
  }

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const int = (v) => (isNum(v) ? String(Math.round(v)) : '—');

  function fmtNum(v, digits = 2) {
    if (!isNum(v)) return v === null || v === undefined ? '—' : String(v);
    return v.toLocaleString(undefined, { maximumFractionDigits: digits });
  }

  function pct(v, digits = 1) {
    return isNum(v) ? `${v.toFixed(digits)} %` : '—';
  }

  /** A percentage with up to two decimals: "97.5 %", "98.25 %", "100 %". */
  function pct2(v) {
    return isNum(v) ? `${String(+v.toFixed(2))} %` : '—';
  }

  const shortDate = (x) => new Date(x).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

  function fmtDate(s) {
    if (!s) return '—';
    const d = new Date(s);
    return Number.isNaN(d.getTime()) ? String(s) : d.toLocaleString();
  }

  function humanMs(ms) {
    if (!isNum(ms)) return '—';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
    const h = Math.floor(m / 60);
    if (h < 48) return `${h} h ${m % 60} min`;
    return `${Math.floor(h / 24)} d ${h % 24} h`;
  }

  function truncate(s, n) {
    const t = String(s ?? '');
    return t.length > n ? `${t.slice(0, n - 1)}…` : t;
  }

  function runDuration(r) {
    if (isNum(r.duration_ms)) return humanMs(r.duration_ms);
    if (r.status === 'running' && r.started_at) {
      const t = Date.parse(r.started_at);
      if (!Number.isNaN(t)) return `${humanMs(Math.max(0, Date.now() - t))} so far`;
    }
    return '—';
  }

  function statusBadge(status) {
    return el('span', { class: `badge st-${String(status).replace(/[^a-z_]/gi, '')}` }, String(status ?? ''));
  }

  // ---------------------------------------------------------------- errors

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }
  class SignedOut extends Error {}

  function showError(e) {
    if (e instanceof SignedOut) return;
    const msg = e instanceof Error ? e.message : String(e);
    const n = $('error');
    n.textContent = msg;
    n.hidden = false;
    if (typeof console !== 'undefined') console.warn('TDS dashboard:', msg);
  }

  function clearError() {
    const n = $('error');
    n.textContent = '';
    n.hidden = true;
  }

  // ---------------------------------------------------------------- API

  function orgParam() {
    return state.orgs.length > 1 && state.org ? state.org : null;
  }

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== null && v !== undefined && v !== '') q.set(k, String(v));
    }
    const s = q.toString();
    return s ? `?${s}` : '';
  }

  /**
   * Calls the admin API. `opts.ok` lists non-2xx statuses whose JSON body is an answer (health's 503).
   * A 401 signs out; other failures throw ApiError with the server's message.
   */
  async function api(path, opts = {}) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      signOut('');
      throw new SignedOut('signed out');
    }
    const headers = { Accept: 'application/json', Authorization: `Bearer ${token}` };
    const init = { method: opts.method || 'GET', headers, cache: 'no-store' };
    if (opts.body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, `network error calling ${path}: ${e.message || e}`);
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch (_) {
        data = null;
      }
    }
    if (res.status === 401) {
      const msg = (data && typeof data.error === 'string' && data.error) || 'unauthorized';
      signOut(msg);
      throw new SignedOut(msg);
    }
    if (res.ok || (opts.ok && opts.ok.includes(res.status))) {
      if (data === null && text) throw new ApiError(res.status, `${path}: the answer is not JSON`);
      return data;
    }
    const msg = data && typeof data.error === 'string' ? data.error : (text ? truncate(text, 200) : res.statusText);
    throw new ApiError(res.status, `${path} answered ${res.status}: ${msg}`);
  }

  // ---------------------------------------------------------------- sign-in

  function showSignIn(message) {
    $('sign-in-panel').hidden = false;
    $('nav').hidden = true;
    $('toolbar').hidden = true;
    for (const p of document.querySelectorAll('.page')) {
      p.hidden = true;
      p.removeAttribute('data-loaded');
    }
    setText('sign-in-error', message || '');
    $('sso-box').hidden = !state.config.oidc;
    $('sign-in').disabled = false;
    const t = $('token');
    t.value = '';
    t.focus();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    stopTimer();
    state.started = false;
    state.seq += 1;
    state.kinds = null;
    clearError();
    showSignIn(message);
  }

  async function startApp() {
    $('sign-in-panel').hidden = true;
    $('nav').hidden = false;
    $('toolbar').hidden = false;
    setText('sign-in-error', '');
    let orgs = [];
    try {
      const data = await api('/api/tds/organizations');
      orgs = Array.isArray(data && data.organizations) ? data.organizations.map(String) : [];
    } catch (e) {
      if (e instanceof SignedOut) return;
      showError(e);
    }
    state.orgs = orgs;
    const saved = sessionStorage.getItem(ORG_KEY);
    state.org = orgs.includes(saved) ? saved : (orgs[0] || null);
    const sel = $('org');
    sel.replaceChildren(...orgs.map((o) => el('option', { value: o }, o)));
    if (state.org) sel.value = state.org;
    $('org-label').hidden = orgs.length < 2;
    const fo = $('filter-org');
    fo.replaceChildren(el('option', { value: '' }, 'any'), ...orgs.map((o) => el('option', { value: o }, o)));
    $('filter-org-label').hidden = orgs.length < 2;
    state.started = true;
    startTimer();
    route();
  }

  function base64url(bytes) {
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomString(n = 32) {
    const a = new Uint8Array(n);
    crypto.getRandomValues(a);
    return base64url(a);
  }

  function redirectUri() {
    return location.origin + location.pathname;
  }

  async function discovery() {
    const issuer = String(state.config.oidc.issuer || '').replace(/\/+$/, '');
    const res = await fetch(`${issuer}/.well-known/openid-configuration`, { cache: 'no-store' });
    if (!res.ok) throw new Error(`OpenID discovery at ${issuer} answered ${res.status}`);
    return res.json();
  }

  async function startSso() {
    const oidc = state.config.oidc;
    if (!oidc) return;
    try {
      if (!window.crypto || !crypto.subtle) {
        throw new Error('SSO needs a secure context (https) for PKCE');
      }
      const meta = await discovery();
      if (!meta.authorization_endpoint || !meta.token_endpoint) {
        throw new Error('the OpenID configuration has no authorization or token endpoint');
      }
      const verifier = randomString(48);
      const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
      const challenge = base64url(new Uint8Array(digest));
      const st = randomString(24);
      sessionStorage.setItem(OIDC_STATE, st);
      sessionStorage.setItem(OIDC_VERIFIER, verifier);
      sessionStorage.setItem(OIDC_TOKEN_ENDPOINT, meta.token_endpoint);
      sessionStorage.setItem(OIDC_RETURN, location.hash || '');
      const url = new URL(meta.authorization_endpoint);
      url.searchParams.set('response_type', 'code');
      url.searchParams.set('client_id', oidc.client_id);
      url.searchParams.set('redirect_uri', redirectUri());
      url.searchParams.set('scope', oidc.scopes || 'openid');
      url.searchParams.set('state', st);
      url.searchParams.set('code_challenge', challenge);
      url.searchParams.set('code_challenge_method', 'S256');
      location.assign(url.toString());
    } catch (e) {
      setText('sign-in-error', `SSO sign-in failed: ${e.message || e}`);
    }
  }

  /** Handles the return from the provider; returns true when the URL was a callback. */
  async function ssoCallback() {
    const params = new URLSearchParams(location.search);
    if (!params.has('code') && !params.has('error')) return false;
    const expected = sessionStorage.getItem(OIDC_STATE);
    const verifier = sessionStorage.getItem(OIDC_VERIFIER);
    const tokenEndpoint = sessionStorage.getItem(OIDC_TOKEN_ENDPOINT);
    const back = sessionStorage.getItem(OIDC_RETURN) || '';
    for (const k of [OIDC_STATE, OIDC_VERIFIER, OIDC_TOKEN_ENDPOINT, OIDC_RETURN]) sessionStorage.removeItem(k);
    history.replaceState(null, '', location.pathname + back);
    if (params.has('error')) {
      throw new Error(`SSO sign-in failed: ${params.get('error')}${params.get('error_description') ? `: ${params.get('error_description')}` : ''}`);
    }
    if (!expected || params.get('state') !== expected || !verifier) {
      throw new Error('SSO sign-in failed: the state does not match this browser session; try again');
    }
    if (!state.config.oidc) throw new Error('SSO sign-in failed: SSO is not configured');
    const endpoint = tokenEndpoint || (await discovery()).token_endpoint;
    const body = new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code'),
      redirect_uri: redirectUri(),
      client_id: state.config.oidc.client_id,
      code_verifier: verifier,
    });
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body,
    });
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (!res.ok || !data) {
      const why = data && (data.error_description || data.error);
      throw new Error(`SSO token exchange answered ${res.status}${why ? `: ${why}` : ''}`);
    }
    const token = data.id_token || data.access_token;
    if (!token) throw new Error('SSO token exchange returned no id_token or access_token');
    sessionStorage.setItem(TOKEN_KEY, token);
    return true;
  }

  // ---------------------------------------------------------------- routing and refresh

  const PAGES = ['overview', 'syncs', 'run', 'queue', 'drift', 'stock', 'metrics'];
  const LOADERS = {};
  const AUTO = new Set(['overview', 'syncs']);

  function parseHash() {
    const h = location.hash.replace(/^#\/?/, '');
    const parts = h.split('/').filter(Boolean);
    if (parts[0] === 'syncs' && parts[1]) return { page: 'run', param: decodeURIComponent(parts[1]) };
    if (PAGES.includes(parts[0]) && parts[0] !== 'run') return { page: parts[0], param: null };
    return { page: 'overview', param: null };
  }

  function route() {
    if (!state.started) return;
    const { page, param } = parseHash();
    const changed = page !== state.page || param !== state.param;
    state.page = page;
    state.param = param;
    for (const p of PAGES) {
      const root = $(`page-${p}`);
      root.hidden = p !== page;
    }
    const navPage = page === 'run' ? 'syncs' : page;
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.page === navPage) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (changed) {
      state.healReady = false;
      updateHealButton();
      fill('heal-plan');
      setText('drift-result', '');
    }
    load(false);
  }

  /** Loads the current page; `silent` keeps data-loaded and the error banner (auto-refresh). */
  async function load(silent) {
    const page = state.page;
    const root = $(`page-${page}`);
    const seq = ++state.seq;
    if (!silent) {
      root.removeAttribute('data-loaded');
      clearError();
    }
    state.loading = seq;
    try {
      const done = await LOADERS[page](() => seq === state.seq, silent);
      if (seq === state.seq && done !== false) root.setAttribute('data-loaded', 'true');
    } catch (e) {
      if (seq === state.seq) showError(e);
    } finally {
      if (state.loading === seq) state.loading = null;
    }
  }

  function startTimer() {
    stopTimer();
    state.timer = setInterval(() => {
      if (!state.started || state.loading !== null || document.visibilityState !== 'visible') return;
      const runRunning = state.page === 'run' && state.runStatus === 'running';
      if (AUTO.has(state.page) || runRunning) load(true);
    }, REFRESH_MS);
  }

  function stopTimer() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
  }

  // ---------------------------------------------------------------- shared renderers

  function table(id, head, rows, empty) {
    const t = $(id);
    t.replaceChildren();
    t.append(el('thead', null, el('tr', null, head.map((h) => el('th', null, h)))));
    const body = el('tbody');
    if (!rows.length) {
      body.append(el('tr', { class: 'empty' }, el('td', { colspan: head.length }, empty || 'nothing')));
    } else {
      body.append(...rows);
    }
    t.append(body);
  }

  function runLink(id) {
    return el('a', { href: `#/syncs/${encodeURIComponent(id)}` }, `#${id}`);
  }

  function queueStats(prefix, q, ids) {
    const stats = q || {};
    setText(ids.visible, int(stats.visible));
    setText(ids.inFlight, int(stats.in_flight));
    const age = stats.oldest_age_secs;
    setText(ids.oldest, isNum(age) ? String(Math.round(age)) : 'unknown');
    if (ids.oldestUnit) setText(ids.oldestUnit, isNum(age) ? ' s' : '');
    const o = $(ids.oldest);
    if (o) o.title = isNum(age) ? humanMs(age * 1000) : 'the queue cannot tell the age of its oldest message';
  }

  function fmtVal(v) {
    if (v === null || v === undefined) return '—';
    if (isNum(v)) return fmtNum(v);
    if (Array.isArray(v)) return truncate(v.join(', '), 120);
    if (typeof v === 'object') return truncate(JSON.stringify(v), 120);
    return String(v);
  }

  const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

  function figureRow(label, z, d, key) {
    const diff = isNum(z) && isNum(d) ? Math.round((d - z) * 100) / 100 : null;
    return el('tr', { class: diff ? 'diff' : null, dataset: key ? { key } : null }, el('td', null, label),
      el('td', { class: 'num' }, fmtVal(z)), el('td', { class: 'num' }, fmtVal(d)),
      el('td', { class: 'num' }, diff === null ? '' : fmtNum(diff)));
  }

  function figureTable(rows, firstHead) {
    const t = el('table', { class: 'data' },
      el('thead', null, el('tr', null, [firstHead, 'Zoho', 'database', 'database − Zoho'].map((h) => el('th', null, h)))),
      el('tbody', null, rows.length ? rows : el('tr', { class: 'empty' }, el('td', { colspan: 4 }, 'no figures'))));
    return el('div', { class: 'table-wrap' }, t);
  }

  /**
   * Two sides' figures, whatever keys they have: scalars in one table, each nested object (a tally
   * such as by_category) in a collapsible table of its own.
   */
  function figuresTable(zoho, database, skip) {
    const z = isObj(zoho) ? zoho : {};
    const d = isObj(database) ? database : {};
    const keys = [...new Set([...Object.keys(z), ...Object.keys(d)])].filter((k) => !(skip && skip.includes(k)));
    const scalar = keys.filter((k) => !isObj(z[k]) && !isObj(d[k]));
    const nested = keys.filter((k) => isObj(z[k]) || isObj(d[k]));
    const out = [figureTable(scalar.map((k) => figureRow(k.replace(/_/g, ' '), z[k], d[k], k)), 'figure')];
    for (const k of nested) {
      const zs = isObj(z[k]) ? z[k] : {};
      const ds = isObj(d[k]) ? d[k] : {};
      const sub = [...new Set([...Object.keys(zs), ...Object.keys(ds)])].sort();
      out.push(el('details', { class: 'figure-group', dataset: { key: k } },
        el('summary', null, `${k.replace(/_/g, ' ')} (${sub.length})`),
        figureTable(sub.map((s) => figureRow(s, zs[s], ds[s])), k.replace(/^by_/, '').replace(/_/g, ' '))));
    }
    return out;
  }

  // ---------------------------------------------------------------- charts

  let CHART_W = 600;
  const CHART_H = 200;
  const PAD = { l: 46, r: 8, t: 10, b: 24 };

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function shortNum(v) {
    if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
    if (Math.abs(v) >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
    return String(+v.toFixed(2));
  }

  function axes(g, max, xLabels, fmtY, min = 0) {
    const ih = CHART_H - PAD.t - PAD.b;
    for (const f of [0, 0.5, 1]) {
      const y = PAD.t + ih - f * ih;
      g.append(svg('line', { x1: PAD.l, x2: CHART_W - PAD.r, y1: y, y2: y, class: 'grid-line' }));
      g.append(svg('text', { x: PAD.l - 4, y: y + 4, 'text-anchor': 'end', class: 'axis' }, (fmtY || shortNum)(min + (max - min) * f)));
    }
    if (xLabels.length) {
      g.append(svg('text', { x: PAD.l, y: CHART_H - 6, class: 'axis' }, xLabels[0]));
      if (xLabels.length > 1) {
        g.append(svg('text', { x: CHART_W - PAD.r, y: CHART_H - 6, 'text-anchor': 'end', class: 'axis' }, xLabels[xLabels.length - 1]));
      }
    }
  }

  function legend(series) {
    return el('div', { class: 'legend' }, series.map((s) => el('span', { class: 'legend-item' },
      el('span', { class: `swatch c${s.color}` }), s.label)));
  }

  /** Grouped bars: series = [{label, color, values}], labels = x labels (one per bar group). */
  function barChart(series, labels, titles, fmtY) {
    const n = labels.length;
    const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter(isNum))));
    const root = svg('svg', { viewBox: `0 0 ${CHART_W} ${CHART_H}`, class: 'chart-svg', role: 'img',
      'aria-label': series.map((s) => s.label).join(', ') });
    const g = svg('g');
    axes(g, max, n ? [labels[0], labels[n - 1]] : [], fmtY);
    const iw = CHART_W - PAD.l - PAD.r;
    const ih = CHART_H - PAD.t - PAD.b;
    const slot = n ? iw / n : iw;
    const bw = Math.max(0.5, (slot * 0.8) / series.length);
    for (let i = 0; i < n; i += 1) {
      series.forEach((s, j) => {
        const v = s.values[i];
        if (!isNum(v) || v <= 0) return;
        const h = (v / max) * ih;
        const x = PAD.l + i * slot + slot * 0.1 + j * bw;
        g.append(svg('rect', { x: x.toFixed(2), y: (PAD.t + ih - h).toFixed(2), width: bw.toFixed(2),
          height: h.toFixed(2), class: `bar c${s.color}` },
        svg('title', null, `${titles[i]}: ${s.label} ${fmtNum(v)}`)));
      });
    }
    root.append(g);
    return el('div', null, legend(series), root);
  }

  /** Lines: series = [{label, color, values}] over xs (numbers, e.g. timestamps). */
  function lineChart(series, xs, titles, fmtY, fmtX, opts = {}) {
    CHART_W = opts.width || 600;
    const vals = series.flatMap((s) => s.values.filter(isNum));
    let min = 0;
    let max = niceMax(Math.max(0, ...vals));
    if (opts.fit && vals.length) {
      // Fitted to the data, so that two close totals still show apart.
      const lo = Math.min(...vals);
      const hi = Math.max(...vals);
      const pad = Math.max(1, (hi - lo) * 0.15);
      min = Math.max(0, Math.floor(lo - pad));
      max = Math.ceil(hi + pad);
    }
    const root = svg('svg', { viewBox: `0 0 ${CHART_W} ${CHART_H}`, class: 'chart-svg', role: 'img',
      'aria-label': series.map((s) => s.label).join(', ') });
    const g = svg('g');
    const fx = fmtX || shortDate;
    axes(g, max, xs.length ? [fx(xs[0]), fx(xs[xs.length - 1])] : [], fmtY, min);
    const iw = CHART_W - PAD.l - PAD.r;
    const ih = CHART_H - PAD.t - PAD.b;
    const x0 = Math.min(...xs);
    const x1 = Math.max(...xs);
    const px = (x) => PAD.l + (x1 > x0 ? ((x - x0) / (x1 - x0)) * iw : iw / 2);
    const py = (v) => PAD.t + ih - ((v - min) / (max - min || 1)) * ih;
    const dots = xs.length <= 60;
    for (const s of series) {
      let d = '';
      let pen = false;
      s.values.forEach((v, i) => {
        if (!isNum(v)) {
          pen = false;
          return;
        }
        d += `${pen ? 'L' : 'M'}${px(xs[i]).toFixed(2)},${py(v).toFixed(2)} `;
        pen = true;
      });
      if (d) g.append(svg('path', { d: d.trim(), class: `line c${s.color}` }));
      s.values.forEach((v, i) => {
        const isolated = !isNum(s.values[i - 1]) && !isNum(s.values[i + 1]);
        if (!isNum(v) || !(dots || isolated)) return;
        g.append(svg('circle', { cx: px(xs[i]).toFixed(2), cy: py(v).toFixed(2), r: 2.5, class: `dot c${s.color}` },
          svg('title', null, `${titles[i]}: ${s.label} ${fmtNum(v)}`)));
      });
    }
    root.append(g);
    CHART_W = 600;
    return el('div', null, legend(series), root);
  }

  // ---------------------------------------------------------------- overview

  /** Composes the overview from older routes when /api/tds/overview is not there (older servers). */
  async function overviewFallback() {
    const org = orgParam();
    const [health, queue, running, alerts, metrics, completed] = await Promise.all([
      api('/api/tds/health', { ok: [503] }),
      api('/api/tds/queue'),
      api(`/api/tds/sync-runs${query({ status: 'running', limit: 100, org_id: org })}`),
      api(`/api/tds/alerts${query({ org_id: org })}`).catch((e) => {
        if (e instanceof SignedOut) throw e;
        return { alerts: [] };
      }),
      api('/api/tds/metrics?hours=24'),
      api(`/api/tds/sync-runs${query({ status: 'completed', limit: 500, org_id: org })}`),
    ]);
    const last = new Map();
    for (const r of completed.runs || []) if (!last.has(r.entity)) last.set(r.entity, r);
    const fin = metrics.runs_finished || 0;
    return {
      health: { status: health.status, reasons: health.reasons || [] },
      active_runs: running.runs || [],
      queue,
      last_success: [...last.values()].map((r) => ({ entity: r.entity, run_id: r.id, finished_at: r.finished_at })),
      runs_24h: { finished: fin, failed: metrics.runs_failed || 0 },
      success_rate: fin > 0 ? (fin - (metrics.runs_failed || 0)) / fin : null,
      zoho_calls_today: null,
      open_alerts: (alerts.alerts || []).filter((a) => !a.resolved_at),
    };
  }

  LOADERS.overview = async (current) => {
    let data;
    try {
      data = await api(`/api/tds/overview${query({ org_id: orgParam() })}`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && /no such route/.test(e.message)) data = await overviewFallback();
      else throw e;
    }
    if (!current()) return false;
    const health = data.health || {};
    const hs = $('health-status');
    const status = ['healthy', 'degraded', 'unhealthy'].includes(health.status) ? health.status : String(health.status ?? 'unknown');
    hs.textContent = status;
    hs.className = `health-status health-${status}`;
    const reasons = Array.isArray(health.reasons) ? health.reasons : [];
    fill('health-reasons', reasons.length ? reasons.map((r) => el('li', null, String(r))) : el('li', { class: 'muted' }, 'nothing to report'));

    const active = Array.isArray(data.active_runs) ? data.active_runs : [];
    setText('active-runs', String(active.length));
    table('active-runs-table', ['run', 'kind', 'mode', 'trigger', 'org', 'started', 'running for', 'fetched', 'changed'],
      active.map((r) => el('tr', { dataset: { runId: r.id } }, el('td', null, runLink(r.id)), el('td', null, r.entity),
        el('td', null, r.mode), el('td', null, r.trigger), el('td', null, r.org_id), el('td', null, fmtDate(r.started_at)),
        el('td', null, runDuration(r)), el('td', { class: 'num' }, int(r.fetched)), el('td', { class: 'num' }, int(r.changed)))),
      'no run in progress');

    const q = data.queue || {};
    queueStats('inbox', q.inbox, { visible: 'inbox-depth', inFlight: 'inbox-in-flight', oldest: 'inbox-oldest', oldestUnit: 'inbox-oldest-unit' });
    setText('deadletter-depth', int((q.deadletter || {}).visible));
    $('deadletter-depth').classList.toggle('warn-text', ((q.deadletter || {}).visible || 0) > 0);

    const alerts = Array.isArray(data.open_alerts) ? data.open_alerts : [];
    setText('open-alerts', String(alerts.length));
    fill('alert-list', alerts.length ? alerts.map((a) => el('li', { class: 'alert', dataset: { alertId: a.id, severity: a.severity } },
      el('span', { class: `badge sev-${String(a.severity).replace(/[^a-z]/g, '')}` }, String(a.severity ?? '')), ' ', el('strong', null, String(a.kind ?? '')), ' ',
      el('span', null, String(a.message ?? '')), ' ', el('span', { class: 'muted small' }, `raised ${fmtDate(a.raised_at)}`)))
      : el('li', { class: 'muted' }, 'no open alert'));

    const rate = data.success_rate;
    setText('success-rate', isNum(rate) ? pct(rate * 100) : '—');
    const r24 = data.runs_24h || {};
    setText('runs-24h', `${int(r24.finished)} finished · ${int(r24.failed)} failed`);
    setText('zoho-calls-today', isNum(data.zoho_calls_today) ? String(Math.round(data.zoho_calls_today)) : '—');

    const last = Array.isArray(data.last_success) ? [...data.last_success] : [];
    last.sort((a, b) => String(a.entity).localeCompare(String(b.entity)));
    table('last-success', ['kind', 'run', 'finished', 'ago'], last.map((s) => {
      const t = Date.parse(s.finished_at);
      return el('tr', { dataset: { kind: s.entity } }, el('td', null, s.entity), el('td', null, s.run_id !== null && s.run_id !== undefined ? runLink(s.run_id) : '—'),
        el('td', null, fmtDate(s.finished_at)), el('td', null, Number.isNaN(t) ? '—' : humanMs(Math.max(0, Date.now() - t))));
    }), 'no successful sync yet');
    return true;
  };

  // ---------------------------------------------------------------- syncs

  async function kinds() {
    if (state.kinds) return state.kinds;
    try {
      const st = await api(`/api/tds/status${query({ org_id: orgParam() })}`);
      const k = st && st.entities && typeof st.entities === 'object' ? Object.keys(st.entities) : [];
      state.kinds = k.length ? k : FALLBACK_KINDS;
    } catch (e) {
      if (e instanceof SignedOut) throw e;
      showError(e);
      state.kinds = FALLBACK_KINDS;
    }
    return state.kinds;
  }

  function buildKindControls(list) {
    const box = $('sync-kinds');
    if (box.dataset.built === list.join(',')) return;
    box.dataset.built = list.join(',');
    box.replaceChildren(...list.filter((k) => !NOT_SYNCABLE.has(k)).map((k) =>
      el('label', { class: 'chk' }, el('input', { type: 'checkbox', name: 'sync-kind', value: k }), ` ${k}`)));
    const fk = $('filter-kind');
    const cur = fk.value;
    fk.replaceChildren(el('option', { value: '' }, 'any'), ...list.map((k) => el('option', { value: k }, k)));
    fk.value = list.includes(cur) ? cur : '';
  }

  LOADERS.syncs = async (current) => {
    const list = await kinds();
    if (!current()) return false;
    buildKindControls(list);
    const data = await api(`/api/tds/sync-runs${query({
      limit: 100,
      entity: $('filter-kind').value,
      status: $('filter-status').value,
      org_id: state.orgs.length > 1 ? $('filter-org').value : '',
    })}`);
    if (!current()) return false;
    state.runs = Array.isArray(data.runs) ? data.runs : [];
    renderRuns();
    return true;
  };

  function renderRuns() {
    const mode = $('filter-mode').value;
    const runs = state.runs.filter((r) => !mode || r.mode === mode);
    const multi = state.orgs.length > 1;
    const head = ['run', 'status', 'kind', 'mode', 'trigger'];
    if (multi) head.push('org');
    head.push('started', 'duration', 'fetched', 'changed', 'failed', 'error');
    table('runs', head, runs.map((r) => {
      const cells = [el('td', null, runLink(r.id)), el('td', { class: `status st-${String(r.status).replace(/[^a-z]/g, '')}` }, String(r.status ?? '')),
        el('td', null, r.entity), el('td', null, r.mode), el('td', null, r.trigger)];
      if (multi) cells.push(el('td', null, r.org_id));
      cells.push(el('td', null, fmtDate(r.started_at)), el('td', null, runDuration(r)),
        el('td', { class: 'num' }, int(r.fetched)), el('td', { class: 'num' }, int(r.changed)),
        el('td', { class: `num${r.failed > 0 ? ' warn-text' : ''}` }, int(r.failed)),
        el('td', { class: 'error-cell', title: r.error || null }, truncate(r.error || '', 80)));
      return el('tr', { dataset: { runId: r.id }, tabindex: 0 }, cells);
    }), 'no runs match');
  }

  function openRunFromEvent(e) {
    const tr = e.target.closest('tr[data-run-id]');
    if (!tr || e.target.closest('a')) return;
    if (e.type === 'keydown' && e.key !== 'Enter') return;
    location.hash = `#/syncs/${encodeURIComponent(tr.dataset.runId)}`;
  }

  function selectedKinds() {
    return [...document.querySelectorAll('input[name="sync-kind"]:checked')].map((c) => c.value);
  }

  function onKindChange(e) {
    const t = e.target;
    if (!(t instanceof HTMLInputElement) || t.name !== 'sync-kind') return;
    if (t.value === 'all' && t.checked) {
      for (const c of document.querySelectorAll('input[name="sync-kind"]')) if (c !== t) c.checked = false;
    } else if (t.value !== 'all' && t.checked) {
      const all = document.querySelector('input[name="sync-kind"][value="all"]');
      if (all) all.checked = false;
    }
  }

  async function startSync(e) {
    e.preventDefault();
    const entities = selectedKinds();
    const out = $('sync-result');
    if (!entities.length) {
      out.replaceChildren('Choose at least one kind (or all).');
      return;
    }
    const body = { entities, mode: $('sync-mode').value };
    if (orgParam()) body.org_id = orgParam();
    const btn = $('start-sync');
    btn.disabled = true;
    out.replaceChildren('Starting…');
    try {
      const res = await api('/api/tds/sync', { method: 'POST', body });
      const ids = Array.isArray(res.run_ids) ? res.run_ids : [];
      if (ids.length) {
        out.replaceChildren(`Started ${ids.length} ${res.mode || ''} run${ids.length > 1 ? 's' : ''}: `,
          ...ids.flatMap((id, i) => (i ? [', ', runLink(id)] : [runLink(id)])));
      } else {
        out.replaceChildren(`Nothing started: ${res.reason || 'no reason given'}`);
      }
      if (res.reason && ids.length) out.append(el('div', { class: 'muted' }, String(res.reason)));
      if (state.page === 'syncs') await load(false);
    } catch (err) {
      out.replaceChildren('Failed (see the error above).');
      showError(err);
    } finally {
      btn.disabled = false;
    }
  }

  // ---------------------------------------------------------------- run detail

  const RUN_FIELDS = [
    ['id', 'run id'], ['org_id', 'organisation'], ['entity', 'kind'], ['mode', 'mode'], ['trigger', 'trigger'],
    ['status', 'status'], ['started_at', 'started'], ['finished_at', 'finished'], ['duration_ms', 'duration'],
    ['pages', 'pages'], ['fetched', 'fetched'], ['changed', 'changed'], ['unchanged', 'unchanged'],
    ['failed', 'failed'], ['api_calls', 'Zoho API calls'],
  ];

  LOADERS.run = async (current) => {
    const id = state.param;
    if (!/^\d+$/.test(id || '')) throw new ApiError(400, `run id must be a number, not ${truncate(id, 40)}`);
    const r = await api(`/api/tds/sync-runs/${encodeURIComponent(id)}`);
    if (!current()) return false;
    state.runStatus = r.status;
    setText('run-id', `#${r.id}`);
    const known = new Set(RUN_FIELDS.map((f) => f[0]).concat('error'));
    const items = RUN_FIELDS.map(([k, label]) => {
      let v = r[k];
      let node;
      if (k === 'status') node = statusBadge(v);
      else if (k === 'started_at' || k === 'finished_at') node = v ? fmtDate(v) : '—';
      else if (k === 'duration_ms') node = runDuration(r);
      else node = v === null || v === undefined ? '—' : String(v);
      return [el('dt', null, label), el('dd', { dataset: { field: k } }, node)];
    });
    for (const [k, v] of Object.entries(r)) {
      if (!known.has(k)) items.push([el('dt', null, k), el('dd', { dataset: { field: k } }, typeof v === 'object' ? JSON.stringify(v) : String(v))]);
    }
    fill('run-fields', items);
    const errNode = $('run-error');
    errNode.textContent = r.error ? String(r.error) : '';
    errNode.classList.toggle('empty-pre', !r.error);
    errNode.dataset.empty = r.error ? 'false' : 'true';
    return true;
  };

  // ---------------------------------------------------------------- queue

  function payloadOf(original) {
    if (typeof original === 'string') {
      try {
        const parsed = JSON.parse(original);
        if (parsed && typeof parsed === 'object') return parsed;
      } catch (_) { /* a plain string */ }
    }
    return original;
  }

  function payloadSummary(original) {
    const p = payloadOf(original);
    if (p && typeof p === 'object' && !Array.isArray(p)) {
      const keys = ['kind', 'type', 'event_type', 'org_id', 'organization_id', 'entity', 'entity_id', 'id', 'mode'];
      const parts = keys.filter((k) => p[k] !== undefined && p[k] !== null && typeof p[k] !== 'object')
        .map((k) => `${k}=${truncate(p[k], 40)}`);
      if (parts.length) return parts.join(' · ');
      return truncate(JSON.stringify(p), 120);
    }
    if (p === null || p === undefined) return '—';
    return truncate(typeof p === 'string' ? p : JSON.stringify(p), 120);
  }

  function payloadFull(original) {
    const p = payloadOf(original);
    if (typeof p === 'string') return p;
    try {
      return JSON.stringify(p, null, 2);
    } catch (_) {
      return String(p);
    }
  }

  LOADERS.queue = async (current) => {
    const [q, dl] = await Promise.all([api('/api/tds/queue'), api('/api/tds/deadletter?limit=10')]);
    if (!current()) return false;
    queueStats('inbox', q.inbox, { visible: 'queue-inbox-visible', inFlight: 'queue-inbox-in-flight', oldest: 'queue-inbox-oldest' });
    queueStats('dl', q.deadletter, { visible: 'queue-deadletter-visible', inFlight: 'queue-deadletter-in-flight', oldest: 'queue-deadletter-oldest' });
    const msgs = Array.isArray(dl.messages) ? dl.messages : [];
    const selectAll = el('input', { type: 'checkbox', id: 'dl-select-all', 'aria-label': 'select all' });
    table('deadletters', [selectAll, 'failed at', 'reason', 'payload', 'receives', 'sent', ''], msgs.map((m) => {
      const id = String(m.message_id ?? '');
      return el('tr', { dataset: { messageId: id } },
        el('td', null, el('input', { type: 'checkbox', name: 'dl-select', value: id, 'aria-label': `select ${id}` })),
        el('td', null, m.failed_at ? fmtDate(m.failed_at) : '—'),
        el('td', { class: 'reason-cell' }, m.reason === null || m.reason === undefined ? '—' : (typeof m.reason === 'string' ? m.reason : JSON.stringify(m.reason))),
        el('td', { class: 'payload-cell' }, el('details', null, el('summary', null, payloadSummary(m.original)),
          el('pre', { class: 'pre' }, payloadFull(m.original)), el('div', { class: 'muted small' }, `message ${id}`))),
        el('td', { class: 'num' }, int(m.receive_count)),
        el('td', null, fmtDate(m.sent_at)),
        el('td', null, el('button', { type: 'button', class: 'btn btn-small retry-one', dataset: { messageId: id } }, 'Retry')));
    }), 'the dead-letter queue is empty');
    const depth = isNum(dl.depth) ? dl.depth : msgs.length;
    const cap = $('deadletters');
    cap.dataset.depth = String(depth);
    $('retry-selected').disabled = !msgs.length;
    return true;
  };

  async function retry(body, label) {
    const out = $('retry-result');
    out.textContent = `${label}…`;
    for (const b of document.querySelectorAll('#retry-selected, #retry-all, button.retry-one')) b.disabled = true;
    try {
      const res = await api('/api/tds/deadletter/retry', { method: 'POST', body });
      out.textContent = `moved ${int(res.moved)}`;
    } catch (e) {
      out.textContent = 'retry failed (see the error above)';
      showError(e);
    } finally {
      disarmRetryAll();
      for (const b of document.querySelectorAll('#retry-selected, #retry-all, button.retry-one')) b.disabled = false;
    }
    if (state.page === 'queue') {
      const keep = out.textContent;
      const hadError = !$('error').hidden;
      const err = $('error').textContent;
      await load(false);
      out.textContent = keep;
      if (hadError) showError(new Error(err));
    }
  }

  let armTimer = null;
  function disarmRetryAll() {
    const b = $('retry-all');
    b.dataset.armed = 'false';
    b.classList.remove('armed');
    b.textContent = 'Retry all';
    if (armTimer) clearTimeout(armTimer);
    armTimer = null;
  }

  function onRetryAll() {
    const b = $('retry-all');
    if (b.dataset.armed !== 'true') {
      b.dataset.armed = 'true';
      b.classList.add('armed');
      b.textContent = 'Sure? Click again';
      armTimer = setTimeout(disarmRetryAll, 6000);
      return;
    }
    disarmRetryAll();
    retry({ max: 10000 }, 'retrying all');
  }

  // ---------------------------------------------------------------- drift

  const bandOf = (p) => (p >= 99 ? 'perfect' : p >= 95 ? 'good' : p >= 90 ? 'warning' : 'critical');

  function kindDiffCount(k) {
    if (isNum(k.differences)) return k.differences;
    return DIFF_CATEGORIES.reduce((n, c) => n + (Array.isArray(k[c]) ? k[c].length : 0), 0);
  }

  function renderReport(r) {
    const match = r.match_pct;
    setText('match-pct', pct2(match));
    setText('health-score', isNum(r.health_score) ? fmtNum(r.health_score, 1) : '—');
    const sev = $('severity');
    const band = typeof r.severity === 'string' ? r.severity : (isNum(r.health_score) ? bandOf(r.health_score) : '—');
    sev.textContent = band;
    sev.className = `badge sev-${band.replace(/[^a-z]/g, '')}`;
    const info = [];
    if (isNum(r.report_id) && r.report_id > 0) info.push(`report ${r.report_id}`);
    if (r.dry_run) info.push('dry run');
    if (isNum(r.api_calls)) info.push(`${r.api_calls} Zoho calls`);
    setText('report-info', info.join(' · '));

    const ks = Array.isArray(r.kinds) ? r.kinds : [];
    table('drift-kinds', ['kind', 'Zoho', 'database', 'matched', 'differences', 'match %'], ks.map((k) => {
      const diff = kindDiffCount(k);
      const matched = isNum(k.matched) ? k.matched : null;
      const total = matched === null ? null : matched + diff;
      const mp = total === null ? null : (total === 0 ? 100 : (matched * 100) / total);
      return el('tr', { dataset: { kind: k.kind }, class: diff > 0 ? 'diff' : null }, el('td', null, k.kind),
        el('td', { class: 'num' }, int(k.zoho_total)), el('td', { class: 'num' }, int(k.local_total)),
        el('td', { class: 'num' }, matched === null ? '—' : int(matched)), el('td', { class: 'num' }, int(diff)),
        el('td', { class: `num sev-text-${mp === null ? 'none' : bandOf(mp)}` }, mp === null ? '—' : pct(mp, 1)));
    }), 'no kinds compared');

    const withIds = ks.filter((k) => DIFF_CATEGORIES.some((c) => Array.isArray(k[c])));
    if (!withIds.length) {
      fill('drift-differences', el('p', { class: 'muted' }, ks.length ? 'ids are in the full report only' : 'no report'));
    } else {
      const blocks = withIds.filter((k) => kindDiffCount(k) > 0).map((k) => el('details', { class: 'diff-kind', dataset: { kind: k.kind } },
        el('summary', null, `${k.kind}: ${kindDiffCount(k)} difference${kindDiffCount(k) === 1 ? '' : 's'}`),
        DIFF_CATEGORIES.filter((c) => Array.isArray(k[c]) && k[c].length).map((c) => idList(c.replace(/_/g, ' '), k[c], c))));
      fill('drift-differences', blocks.length ? blocks : el('p', { class: 'muted' }, 'no differences'));
    }
    const recs = Array.isArray(r.recommendations) ? r.recommendations : [];
    fill('recommendations', recs.length ? recs.map((x) => el('li', null, String(x))) : el('li', { class: 'muted' }, 'none'));
  }

  function idList(label, ids, category) {
    const shown = ids.slice(0, 500);
    return el('details', { class: 'id-list', dataset: category ? { category } : null },
      el('summary', null, `${label} (${ids.length})`),
      el('div', { class: 'ids' }, shown.map((id) => el('code', null, String(id))),
        ids.length > shown.length ? el('span', { class: 'muted' }, ` … and ${ids.length - shown.length} more`) : null));
  }

  function noReport() {
    setText('match-pct', 'no comparison yet');
    setText('health-score', '—');
    const sev = $('severity');
    sev.textContent = '—';
    sev.className = 'badge';
    setText('report-info', 'run "Compare now"');
    table('drift-kinds', ['kind', 'Zoho', 'database', 'matched', 'differences', 'match %'], [], 'no comparison yet');
    fill('drift-differences', el('p', { class: 'muted' }, 'no comparison yet'));
    fill('recommendations', el('li', { class: 'muted' }, 'no comparison yet'));
  }

  /** The figure a history snapshot is charted by: its total, else the sum of its top-level numbers. */
  function snapshotTotal(stats) {
    if (!stats || typeof stats !== 'object') return null;
    if (isNum(stats.total)) return stats.total;
    if (isNum(stats.items_in_stock) && isNum(stats.out_of_stock)) return stats.items_in_stock + stats.out_of_stock;
    const nums = Object.values(stats).filter(isNum);
    return nums.length ? nums.reduce((a, b) => a + b, 0) : null;
  }

  function renderHistory(rows) {
    const byEntity = new Map();
    for (const r of rows) {
      const t = Date.parse(r.taken_at);
      if (Number.isNaN(t)) continue;
      const e = String(r.entity);
      if (!byEntity.has(e)) byEntity.set(e, new Map());
      const m = byEntity.get(e);
      if (!m.has(t)) m.set(t, { zoho: null, database: null });
      const v = snapshotTotal(r.stats);
      if (r.source === 'zoho') m.get(t).zoho = v;
      else if (r.source === 'database') m.get(t).database = v;
    }
    if (!byEntity.size) {
      fill('drift-history', el('p', { class: 'muted' }, 'no history yet'));
      return;
    }
    const charts = [...byEntity.keys()].sort().map((e) => {
      const m = byEntity.get(e);
      const xs = [...m.keys()].sort((a, b) => a - b);
      const zs = xs.map((x) => m.get(x).zoho);
      const ds = xs.map((x) => m.get(x).database);
      const titles = xs.map((x) => new Date(x).toLocaleString());
      const lastZ = zs[zs.length - 1];
      const lastD = ds[ds.length - 1];
      return el('div', { class: 'chart-box', dataset: { entity: e } },
        el('div', { class: 'chart-title' }, `${e.replace(/_/g, ' ')}`, el('span', { class: 'muted small' }, ` latest: Zoho ${fmtVal(lastZ)}, database ${fmtVal(lastD)}`)),
        lineChart([{ label: 'Zoho', color: 1, values: zs }, { label: 'database', color: 2, values: ds }], xs, titles, null,
          shortDate, { width: 420, fit: true }));
    });
    fill('drift-history', el('p', { class: 'muted small' }, 'History rows carry each side\'s statistics, not a match %: the charts show each group\'s totals in Zoho and in the database per comparison.'), charts);
  }

  LOADERS.drift = async (current) => {
    const org = orgParam();
    // Every comparison records history rows: none means no comparison yet, and the report is not
    // asked for (its 404 would be a console error on a fresh install).
    const history = await api(`/api/tds/statistics/history${query({ org_id: org, limit: 200 })}`);
    const rows = Array.isArray(history.history) ? history.history : [];
    const report = rows.length ? await api(`/api/tds/statistics/compare${query({ org_id: org })}`).catch((e) => {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }) : null;
    if (!current()) return false;
    if (report) renderReport(report);
    else noReport();
    renderHistory(rows);
    updateHealButton();
    return true;
  };

  function updateHealButton() {
    const b = $('heal');
    b.disabled = !state.healReady;
    b.title = state.healReady ? 'Heal the differences the dry run planned' : 'Run a dry run first';
  }

  function reportOfOrg(res) {
    const reports = Array.isArray(res && res.reports) ? res.reports : [];
    const org = state.org;
    return reports.find((r) => r.org_id === org) || reports[0] || null;
  }

  function renderHeal(report, planned) {
    const actions = Array.isArray(report && report.heal) ? report.heal : [];
    const box = $('heal-plan');
    const title = planned ? 'Planned heal actions (dry run)' : 'Heal actions';
    if (!actions.length) {
      box.replaceChildren(el('p', { class: 'muted' }, `${title}: nothing to heal (no kind above its threshold).`));
      return;
    }
    const t = el('table', { class: 'data' },
      el('thead', null, el('tr', null, ['kind', 're-fetch', 'tombstone', 'run'].map((h) => el('th', null, h)))),
      el('tbody', null, actions.map((a) => el('tr', { dataset: { kind: a.kind } }, el('td', null, a.kind),
        el('td', null, idList('ids', a.refetch || [])),
        el('td', null, idList('ids', a.tombstone || [])),
        el('td', null, a.run_id !== null && a.run_id !== undefined ? runLink(a.run_id) : (planned ? 'planned' : '—'))))));
    box.replaceChildren(el('div', { class: 'card-subtitle' }, title), el('div', { class: 'table-wrap' }, t));
  }

  async function driftAction(kind) {
    const bodies = {
      compare: { entities: ['all'], heal: false },
      dry: { entities: ['all'], heal: true, dry_run: true },
      heal: { entities: ['all'], heal: true },
    };
    const labels = { compare: 'comparing', dry: 'planning (dry run)', heal: 'healing' };
    const body = { ...bodies[kind] };
    if (orgParam()) body.org_id = orgParam();
    const root = $('page-drift');
    const out = $('drift-result');
    const buttons = ['compare-now', 'heal-dry-run', 'heal'].map($);
    for (const b of buttons) b.disabled = true;
    root.removeAttribute('data-loaded');
    out.textContent = `${labels[kind]}… (this reads every record from Zoho)`;
    clearError();
    const seq = ++state.seq;
    try {
      const res = await api('/api/tds/statistics/sync-differences', { method: 'POST', body });
      const report = reportOfOrg(res);
      if (kind === 'dry') state.healReady = true;
      if (kind === 'heal') state.healReady = false;
      if (report) {
        renderReport(report);
        if (kind !== 'compare') renderHeal(report, kind === 'dry');
        out.textContent = `${kind === 'compare' ? 'compared' : kind === 'dry' ? 'dry run done' : 'healed'}: match ${pct2(report.match_pct)}`;
      } else {
        out.textContent = 'no report returned (no organisation configured?)';
      }
      try {
        const h = await api(`/api/tds/statistics/history${query({ org_id: orgParam(), limit: 200 })}`);
        if (state.page === 'drift') renderHistory(Array.isArray(h.history) ? h.history : []);
      } catch (e) {
        showError(e);
      }
    } catch (e) {
      out.textContent = 'failed (see the error above)';
      showError(e);
    } finally {
      for (const b of buttons) b.disabled = false;
      updateHealButton();
      if (seq === state.seq && state.page === 'drift') root.setAttribute('data-loaded', 'true');
    }
  }

  // ---------------------------------------------------------------- stock

  function noStats(id, e) {
    if (e instanceof ApiError && e.status === 404) {
      fill(id, el('p', { class: 'muted' }, 'no comparison yet'));
      return true;
    }
    return false;
  }

  LOADERS.stock = async (current) => {
    const org = orgParam();
    const grab = (path) => api(`${path}${query({ org_id: org })}`).catch((e) => {
      if (e instanceof ApiError && e.status === 404) return { missing: e };
      throw e;
    });
    // No history row means no comparison yet (asking would answer 404, a console error).
    const seen = await api(`/api/tds/statistics/history${query({ org_id: org, limit: 1 })}`);
    const none = { missing: new ApiError(404, 'no comparison yet') };
    const [stock, items] = Array.isArray(seen.history) && seen.history.length
      ? await Promise.all([grab('/api/tds/statistics/stock'), grab('/api/tds/statistics/items')])
      : [none, none];
    if (!current()) return false;
    if (stock.missing) {
      noStats('stock-stats', stock.missing);
      fill('stock-warehouses', el('p', { class: 'muted' }, 'no comparison yet'));
    } else {
      const s = stock.statistics || {};
      const z = s.zoho || {};
      const d = s.database || {};
      if (!stock.statistics) {
        fill('stock-stats', el('p', { class: 'muted' }, 'the latest comparison has no stock statistics'));
      } else {
        const low = [z.low_stock, d.low_stock];
        fill('stock-stats',
          isNum(low[0]) || isNum(low[1])
            ? el('p', { class: `low-stock${(low[1] || 0) > 0 ? ' warn-text' : ''}`, id: 'low-stock' },
              `Low stock (items above 0 and below the threshold): Zoho ${fmtVal(low[0])}, database ${fmtVal(low[1])}`)
            : null,
          figuresTable(z, d, ['by_warehouse']));
      }
      const wz = z.by_warehouse || {};
      const wd = d.by_warehouse || {};
      const locs = [...new Set([...Object.keys(wz), ...Object.keys(wd)])].sort();
      const t = el('table', { class: 'data', id: 'stock-warehouse-table' },
        el('thead', null, el('tr', null, ['warehouse (location id)', 'Zoho', 'database', 'database − Zoho'].map((h) => el('th', null, h)))),
        el('tbody', null, locs.length ? locs.map((l) => {
          const a = wz[l];
          const b = wd[l];
          const diff = isNum(a) && isNum(b) ? Math.round((b - a) * 100) / 100 : null;
          return el('tr', { dataset: { location: l }, class: diff ? 'diff' : null }, el('td', null, l), el('td', { class: 'num' }, fmtVal(a)),
            el('td', { class: 'num' }, fmtVal(b)), el('td', { class: 'num' }, diff === null ? '' : fmtNum(diff)));
        }) : el('tr', { class: 'empty' }, el('td', { colspan: 4 }, 'no per-warehouse figures'))));
      fill('stock-warehouses', el('div', { class: 'table-wrap' }, t));
    }
    if (items.missing) noStats('item-stats', items.missing);
    else if (!items.statistics) fill('item-stats', el('p', { class: 'muted' }, 'the latest comparison has no item statistics'));
    else fill('item-stats', figuresTable(items.statistics.zoho || {}, items.statistics.database || {}));
    return true;
  };

  async function pollStock(e) {
    e.preventDefault();
    const body = { mode: $('stock-mode').value };
    if (orgParam()) body.org_id = orgParam();
    const btn = $('poll-stock');
    const out = $('stock-status');
    btn.disabled = true;
    out.textContent = 'polling…';
    const res = $('stock-result');
    res.removeAttribute('data-loaded');
    try {
      const answer = await api('/api/tds/stock/sync', { method: 'POST', body });
      const reports = Array.isArray(answer.reports) ? answer.reports : [];
      table('stock-result', ['org', 'run', 'items checked', 'rows changed', 'rows unchanged', 'low stock', 'Zoho calls'],
        reports.map((r) => el('tr', { dataset: { org: r.org_id } }, el('td', null, r.org_id),
          el('td', null, r.run_id !== null && r.run_id !== undefined ? runLink(r.run_id) : '—'),
          el('td', { class: 'num' }, int(r.items_checked)), el('td', { class: 'num' }, int(r.rows_changed)),
          el('td', { class: 'num' }, int(r.rows_unchanged)), el('td', { class: `num${r.low_stock > 0 ? ' warn-text' : ''}` }, int(r.low_stock)),
          el('td', { class: 'num' }, int(r.api_calls)))), 'no organisation polled');
      res.setAttribute('data-loaded', 'true');
      out.textContent = `${answer.mode || body.mode} poll done`;
    } catch (err) {
      out.textContent = 'poll failed (see the error above)';
      showError(err);
    } finally {
      btn.disabled = false;
    }
  }

  // ---------------------------------------------------------------- metrics

  LOADERS.metrics = async (current) => {
    const hours = $('metrics-hours').value || '24';
    const m = await api(`/api/tds/metrics${query({ hours })}`);
    if (!current()) return false;
    setText('throughput', isNum(m.throughput_per_minute) ? `${fmtNum(m.throughput_per_minute, 2)} /min` : '—');
    setText('average-sync', isNum(m.average_sync_ms) ? humanMs(m.average_sync_ms) : '—');
    setText('error-rate', isNum(m.error_rate) ? pct(m.error_rate * 100, 1) : '—');
    setText('api-calls-per-hour', isNum(m.api_calls_per_hour) ? fmtNum(m.api_calls_per_hour, 1) : '—');
    setText('runs-totals', `${int(m.runs_finished)} runs finished, ${int(m.runs_failed)} failed`);
    setText('api-calls-total', `${int(m.api_calls)} calls · ${int(m.records_synced)} records · ${int(m.webhooks_applied)} webhooks`);
    setText('metrics-range', m.from && m.to ? `${fmtDate(m.from)} – ${fmtDate(m.to)}` : '');
    const series = Array.isArray(m.series) ? m.series : [];
    const short = Number(hours) > 48;
    const labels = series.map((s) => {
      const d = new Date(s.hour);
      return short ? d.toLocaleDateString() : shortDate(d);
    });
    const titles = series.map((s) => new Date(s.hour).toLocaleString());
    const col = (k) => series.map((s) => (isNum(s[k]) ? s[k] : null));
    if (!series.length) {
      for (const id of ['chart-records', 'chart-runs', 'chart-api', 'chart-duration']) fill(id, el('p', { class: 'muted' }, 'no data'));
      return true;
    }
    fill('chart-records', barChart([{ label: 'records synced', color: 1, values: col('records_synced') },
      { label: 'webhooks applied', color: 2, values: col('webhooks_applied') }], labels, titles));
    fill('chart-runs', barChart([{ label: 'finished', color: 3, values: col('runs_finished') },
      { label: 'failed', color: 4, values: col('runs_failed') }], labels, titles));
    fill('chart-api', barChart([{ label: 'Zoho API calls', color: 5, values: col('api_calls') }], labels, titles));
    const avg = series.map((s) => (isNum(s.runs_finished) && s.runs_finished > 0 && isNum(s.duration_ms_sum) ? s.duration_ms_sum / s.runs_finished : null));
    const xs = series.map((s) => Date.parse(s.hour));
    fill('chart-duration', lineChart([{ label: 'average run duration', color: 1, values: avg }], xs, titles,
      (v) => humanMs(v), (x) => (short ? new Date(x).toLocaleDateString() : shortDate(x))));
    return true;
  };

  // ---------------------------------------------------------------- wiring

  function wire() {
    $('sign-in-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const token = $('token').value.trim();
      if (!token) {
        setText('sign-in-error', 'Enter a token.');
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      $('token').value = '';
      startApp();
    });
    $('sign-in-sso').addEventListener('click', startSso);
    $('sign-out').addEventListener('click', () => signOut(''));
    $('refresh').addEventListener('click', () => {
      if (state.started) load(false);
    });
    $('error').addEventListener('click', clearError);
    $('org').addEventListener('change', (e) => {
      state.org = e.target.value;
      sessionStorage.setItem(ORG_KEY, state.org);
      state.healReady = false;
      updateHealButton();
      fill('heal-plan');
      load(false);
    });
    window.addEventListener('hashchange', route);
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && state.started && AUTO.has(state.page) && state.loading === null) load(true);
    });

    // Syncs.
    $('sync-form').addEventListener('change', onKindChange);
    $('sync-form').addEventListener('submit', startSync);
    for (const id of ['filter-kind', 'filter-status', 'filter-org']) $(id).addEventListener('change', () => load(false));
    $('filter-mode').addEventListener('change', () => {
      if (state.page === 'syncs') renderRuns();
    });
    $('runs').addEventListener('click', openRunFromEvent);
    $('runs').addEventListener('keydown', openRunFromEvent);
    $('active-runs-table').addEventListener('click', openRunFromEvent);

    // Queue.
    $('deadletters').addEventListener('change', (e) => {
      if (e.target.id === 'dl-select-all') {
        for (const c of document.querySelectorAll('input[name="dl-select"]')) c.checked = e.target.checked;
      }
    });
    $('deadletters').addEventListener('click', (e) => {
      const b = e.target.closest('button.retry-one');
      if (b) retry({ message_ids: [b.dataset.messageId] }, 'retrying');
    });
    $('retry-selected').addEventListener('click', () => {
      const ids = [...document.querySelectorAll('input[name="dl-select"]:checked')].map((c) => c.value);
      if (!ids.length) {
        $('retry-result').textContent = 'select messages first';
        return;
      }
      retry({ message_ids: ids }, 'retrying');
    });
    $('retry-all').addEventListener('click', onRetryAll);

    // Drift.
    $('compare-now').addEventListener('click', () => driftAction('compare'));
    $('heal-dry-run').addEventListener('click', () => driftAction('dry'));
    $('heal').addEventListener('click', () => {
      if (state.healReady) driftAction('heal');
    });

    // Stock and metrics.
    $('stock-form').addEventListener('submit', pollStock);
    $('metrics-hours').addEventListener('change', () => load(false));
  }

  async function init() {
    wire();
    try {
      const res = await fetch('/dashboard/config.json', { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (res.ok) {
        const cfg = await res.json();
        state.config = { oidc: cfg && cfg.oidc && cfg.oidc.issuer && cfg.oidc.client_id ? cfg.oidc : null };
      } else {
        showError(new Error(`/dashboard/config.json answered ${res.status}`));
      }
    } catch (e) {
      showError(new Error(`could not read /dashboard/config.json: ${e.message || e}`));
    }
    let ssoError = '';
    try {
      await ssoCallback();
    } catch (e) {
      ssoError = e.message || String(e);
    }
    if (sessionStorage.getItem(TOKEN_KEY)) {
      startApp();
    } else {
      showSignIn(ssoError);
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
