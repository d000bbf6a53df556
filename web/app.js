// The netnsd dashboard: a live table of the host's network namespaces, fed by the websocket
// event stream (a snapshot, then events), with an event log and an admin console. It uses only
// the public API, from its own origin. Names are bytes the kernel allows, so they are only ever
// put in the page as text (textContent), never as HTML. DOM updates are batched into one per
// animation frame, and the table shows one page at a time, so thousands of namespaces and
// bursts of events stay cheap.

const LOG_CAP = 200;             // events kept in the log
const HIGHLIGHT_MS = 1500;       // how long an added, changed or deleted row stays highlighted
const BACKOFF_FIRST_MS = 250;    // first reconnect delay; doubles up to BACKOFF_MAX_MS
const BACKOFF_MAX_MS = 5000;
const OFFLINE_AFTER = 5;         // failed attempts in a row before saying "offline"
const TOKEN_KEY = 'netnsd.token';

const $ = (id) => document.getElementById(id);

// --- the model -----------------------------------------------------------------------------

// Entries by href: every entry's href is its exact address, even for names that are not
// UTF-8 (whose `name` the daemon shows with replacement characters), so it is the key.
const entries = new Map();
const highlights = new Map();     // href -> { kind: 'add' | 'change' | 'delete', until }
let revision = null;              // the last revision applied; null before the first snapshot
let resetPending = false;
const log = [];                   // newest first
let logPaused = false;
let logMissed = 0;
let logShown = false;             // the rows show the log as it was when paused

const view = {
    sortKey: 'name',
    sortDir: 1,
    filter: '',
    page: 0,
    pageSize: 100,
    selected: null,               // href of the entry shown in the details panel
};

// --- rendering, once per animation frame ---------------------------------------------------

const dirty = { table: false, log: false, count: false, host: false };
let frameRequested = false;

function invalidate(...parts) {
    for (const p of parts)
        dirty[p] = true;
    if (!frameRequested) {
        frameRequested = true;
        requestAnimationFrame(render);
    }
}

function render() {
    frameRequested = false;
    if (dirty.count) {
        $('count-value').textContent = String(entries.size);
        dirty.count = false;
    }
    if (dirty.table) {
        renderTable();
        dirty.table = false;
    }
    if (dirty.log) {
        renderLog();
        dirty.log = false;
    }
    if (dirty.host) {
        renderHost();
        dirty.host = false;
    }
}

// A filter with *, ? or [ is a shell glob on the whole name (as the stream's `names`);
// anything else is a case-insensitive substring.
function nameMatcher(text) {
    if (!text)
        return () => true;
    if (!/[*?[]/.test(text)) {
        const needle = text.toLowerCase();
        return (name) => name.toLowerCase().includes(needle);
    }
    let re = '';
    for (let i = 0; i < text.length; ++i) {
        const c = text[i];
        if (c === '*')
            re += '.*';
        else if (c === '?')
            re += '.';
        else if (c === '[') {
            const end = text.indexOf(']', i + 2);
            if (end < 0) {
                re += '\\[';
                continue;
            }
            let set = text.slice(i + 1, end).replace(/\\/g, '\\\\');
            if (set.startsWith('!'))
                set = '^' + set.slice(1);
            re += `[${set}]`;
            i = end;
        } else
            re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
    try {
        const compiled = new RegExp(`^${re}$`, 's');
        return (name) => compiled.test(name);
    } catch {
        return () => false;
    }
}

function compare(a, b) {
    const k = view.sortKey;
    let x = a[k];
    let y = b[k];
    if (k === 'ns_id') {
        x = a.ns_id ?? a.inode;
        y = b.ns_id ?? b.inode;
    }
    if (x === y)
        return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
    if (x === null || x === undefined)
        return 1; // nulls last whichever the direction
    if (y === null || y === undefined)
        return -1;
    return (x < y ? -1 : 1) * view.sortDir;
}

function visibleEntries() {
    const match = nameMatcher(view.filter);
    const out = [];
    for (const e of entries.values())
        if (match(e.name))
            out.push(e);
    // Deleted rows still highlighted stay in view for a moment.
    for (const [href, h] of highlights)
        if (h.kind === 'delete' && !entries.has(href) && match(h.entry.name))
            out.push(h.entry);
    out.sort(compare);
    return out;
}

function cell(tr, text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className)
        td.className = className;
    tr.append(td);
    return td;
}

function renderTable() {
    const rows = visibleEntries();
    const pages = Math.max(1, Math.ceil(rows.length / view.pageSize));
    view.page = Math.min(view.page, pages - 1);
    const start = view.page * view.pageSize;
    const now = performance.now();
    const fragment = document.createDocumentFragment();
    for (const e of rows.slice(start, start + view.pageSize)) {
        const tr = document.createElement('tr');
        tr.dataset.href = e.href;
        tr.tabIndex = 0;
        const h = highlights.get(e.href);
        if (h && h.until > now)
            tr.className = `hl-${h.kind}`;
        cell(tr, e.name, 'name').title = e.name;
        cell(tr, e.state, `state-${e.state}`);
        cell(tr, e.nsid === null ? '—' : String(e.nsid), 'nsid');
        cell(tr, e.ns_id === null ? `inode ${e.inode ?? '—'}` : `${e.ns_id} / ${e.inode}`);
        cell(tr, formatTime(e.first_seen));
        const actions = cell(tr, '', 'admin-only');
        if (!(h && h.kind === 'delete')) {
            actions.append(button('Set nsid', 'set-nsid', e), ' ', button('Delete', 'delete', e));
            actions.lastChild.classList.add('danger');
        }
        fragment.append(tr);
    }
    $('ns-body').replaceChildren(fragment);
    $('empty').hidden = rows.length !== 0;
    $('page-info').textContent = rows.length === 0
        ? '' : `${start + 1}–${Math.min(rows.length, start + view.pageSize)} of ${rows.length}`;
    $('page-prev').disabled = view.page === 0;
    $('page-next').disabled = view.page >= pages - 1;
    for (const th of document.querySelectorAll('#ns-table th[data-key]')) {
        if (th.dataset.key === view.sortKey)
            th.setAttribute('aria-sort', view.sortDir > 0 ? 'ascending' : 'descending');
        else
            th.removeAttribute('aria-sort');
    }
}

function button(text, action, entry) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = text;
    b.dataset.action = action;
    b.setAttribute('aria-label', `${text} ${entry.name}`);
    return b;
}

function formatTime(iso) {
    if (!iso)
        return '—';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime()))
        return iso;
    const two = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ` +
           `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function renderLog() {
    $('log-state').textContent = logPaused
        ? `Paused${logMissed ? `: ${logMissed} new event${logMissed === 1 ? '' : 's'} held` : ''}`
        : '';
    if (logPaused && logShown)
        return;
    logShown = true;
    const fragment = document.createDocumentFragment();
    for (const ev of log) {
        const tr = document.createElement('tr');
        tr.className = `ev-${ev.type}`;
        cell(tr, ev.type);
        cell(tr, ev.name ?? '—', 'name');
        cell(tr, ev.nsid === null || ev.nsid === undefined ? '—' : String(ev.nsid));
        cell(tr, formatTime(ev.time));
        fragment.append(tr);
    }
    $('log-body').replaceChildren(fragment);
}

// --- highlights ----------------------------------------------------------------------------

let highlightTimer = null;

function highlight(href, kind, entry) {
    highlights.set(href, { kind, until: performance.now() + HIGHLIGHT_MS, entry });
    if (highlightTimer === null)
        highlightTimer = setTimeout(expireHighlights, HIGHLIGHT_MS);
}

function expireHighlights() {
    highlightTimer = null;
    const now = performance.now();
    let next = Infinity;
    for (const [href, h] of highlights) {
        if (h.until <= now)
            highlights.delete(href);
        else
            next = Math.min(next, h.until);
    }
    invalidate('table');
    if (next !== Infinity)
        highlightTimer = setTimeout(expireHighlights, next - now);
}

// --- the stream ----------------------------------------------------------------------------

let socket = null;
let failures = 0;
let reconnectTimer = null;

function setConnection(state, text) {
    const el = $('conn');
    el.className = `conn conn-${state}`;
    el.dataset.state = state;
    $('conn-text').textContent = text ?? state;
}

function notice(text) {
    const el = $('notice');
    el.textContent = text;
    el.hidden = !text;
}

// The event stream over a websocket of this origin; each message parsed, others dropped.
function openStream(query, onParsed) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${scheme}//${location.host}/api/v1/events?${query}`);
    ws.onmessage = (m) => {
        let msg;
        try {
            msg = JSON.parse(m.data);
        } catch {
            return;
        }
        onParsed(msg);
    };
    return ws;
}

function connect() {
    reconnectTimer = null;
    const ws = openStream(revision === null ? 'snapshot=true' : `since=${revision}`, (msg) => {
        if (socket === ws)
            onMessage(msg);
    });
    socket = ws;
    ws.onclose = () => {
        if (socket !== ws)
            return;
        socket = null;
        ++failures;
        const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (failures - 1));
        const jittered = Math.round(delay * (0.75 + Math.random() * 0.5));
        const seconds = (jittered / 1000).toFixed(1);
        if (failures >= OFFLINE_AFTER)
            setConnection('offline', `offline, retrying in ${seconds} s`);
        else
            setConnection('reconnecting', `reconnecting in ${seconds} s`);
        reconnectTimer = setTimeout(connect, jittered);
    };
}

function onMessage(msg) {
    switch (msg.type) {
    case 'hello':
        failures = 0;
        setConnection('connected');
        break;
    case 'reset':
        resetPending = true;
        break;
    case 'snapshot':
        applySnapshot(msg);
        break;
    case 'add':
    case 'delete':
    case 'nsid':
    case 'destroyed':
        applyEvent(msg);
        break;
    default:
        break;
    }
}

function applySnapshot(msg) {
    const before = new Set(entries.keys());
    const first = revision === null;
    entries.clear();
    for (const e of msg.namespaces) {
        entries.set(e.href, e);
        if (!first && !before.has(e.href))
            highlight(e.href, 'add', e);
    }
    revision = msg.revision;
    if (resetPending) {
        resetPending = false;
        notice('The server could not replay what was missed (it restarted or its history ' +
               'moved on): the table was reloaded from a fresh snapshot.');
    }
    invalidate('table', 'count');
    if (view.selected)
        renderDetails();
}

function applyEvent(ev) {
    revision = ev.revision;
    const ns = ev.namespace;
    if (ev.type === 'add' && ns) {
        entries.set(ns.href, ns);
        highlight(ns.href, 'add', ns);
    } else if (ev.type === 'delete' && ns) {
        const old = entries.get(ns.href) ?? ns;
        entries.delete(ns.href);
        highlight(ns.href, 'delete', old);
    } else if (ev.type === 'nsid' && ns) {
        entries.set(ns.href, ns);
        highlight(ns.href, 'change', ns);
    }
    if (logPaused)
        ++logMissed;
    log.unshift(ev);
    if (log.length > LOG_CAP)
        log.length = LOG_CAP;
    invalidate('table', 'count', 'log');
    if (view.selected === ns?.href)
        renderDetails();
}

// --- details -------------------------------------------------------------------------------

function renderDetails(pids) {
    const href = view.selected;
    const e = entries.get(href);
    const list = $('details-list');
    const rows = [];
    if (!e) {
        rows.push(['Name', highlights.get(href)?.entry?.name ?? href], ['State', 'gone']);
    } else {
        rows.push(['Name', e.name], ['State', e.state], ['Path', e.path],
                  ['nsid', e.nsid === null ? 'none' : String(e.nsid)],
                  ['ns_id', e.ns_id === null ? '—' : String(e.ns_id)],
                  ['inode', e.inode === null ? '—' : String(e.inode)],
                  ['First seen', formatTime(e.first_seen)]);
    }
    if (pids !== undefined)
        rows.push(['Processes', pids]);
    else if (list.dataset.href === href && list.dataset.pids)
        rows.push(['Processes', list.dataset.pids]);
    const fragment = document.createDocumentFragment();
    for (const [k, v] of rows) {
        const dt = document.createElement('dt');
        dt.textContent = k;
        const dd = document.createElement('dd');
        dd.textContent = v;
        fragment.append(dt, dd);
    }
    list.replaceChildren(fragment);
    list.dataset.href = href;
    if (pids !== undefined)
        list.dataset.pids = pids;
    $('details').hidden = false;
}

async function showDetails(href) {
    if (view.selected !== href)
        clearExecResult();
    view.selected = href;
    openLinks(namedLinksTarget(href));
    $('details-list').dataset.pids = '';
    renderDetails('loading…');
    const r = await api('GET', `${href}/pids`, undefined, false);
    if (view.selected !== href)
        return;
    renderDetails(r.ok ? (r.body.pids.length ? r.body.pids.join(', ') : 'none')
                       : problemText(r));
}

// --- exec ----------------------------------------------------------------------------------

// argv is a list of fields, one argument each: never a string a shell would split.
let execDisabled = false;         // learnt from the first 403 exec-disabled; the page cannot know before
let execRunning = false;

function argvInputs() {
    return [...$('exec-argv').querySelectorAll('input')];
}

function renumberArgv() {
    const items = [...$('exec-argv').children];
    items.forEach((li, i) => {
        li.querySelector('.argv-label').textContent = i === 0 ? 'Command' : `Argument ${i}`;
        const remove = li.querySelector('button');
        remove.setAttribute('aria-label',
                            i === 0 ? 'Remove command' : `Remove argument ${i}`);
        remove.disabled = items.length === 1;
    });
}

function addArgv(value = '', focus = false) {
    const li = document.createElement('li');
    const label = document.createElement('label');
    const text = document.createElement('span');
    text.className = 'argv-label';
    const input = document.createElement('input');
    input.type = 'text';
    input.autocomplete = 'off';
    input.spellcheck = false;
    input.value = value;
    label.append(text, input);
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = 'Remove';
    remove.addEventListener('click', () => {
        const next = li.nextElementSibling ?? li.previousElementSibling;
        li.remove();
        renumberArgv();
        next?.querySelector('input')?.focus();
    });
    const line = document.createElement('div');
    line.append(label, remove);
    li.append(line);
    $('exec-argv').append(li);
    renumberArgv();
    if (focus)
        input.focus();
    return input;
}

function clearExecResult() {
    $('exec-result').hidden = true;
    $('exec-error').hidden = true;
    $('exec-state').textContent = '';
}

function showExecDisabled() {
    execDisabled = true;
    $('exec-disabled').hidden = false;
    $('exec-run').hidden = true;
}

function execError(text) {
    $('exec-result').hidden = true;
    $('exec-error').textContent = text;
    $('exec-error').hidden = false;
}

function showExecResult(r) {
    $('exec-error').hidden = true;
    const status = $('exec-status');
    if (r.signal !== null && r.signal !== undefined) {
        status.textContent = `killed by signal ${r.signal}`;
        status.classList.add('bad');
    } else {
        status.textContent = `exit code ${r.exit_code}`;
        status.classList.toggle('bad', r.exit_code !== 0);
    }
    $('exec-duration').textContent = `${Number(r.duration_ms).toFixed(1)} ms`;
    $('exec-timed-out').textContent = r.timed_out ? 'yes: the timeout passed and it was killed'
                                                  : 'no';
    $('exec-timed-out').classList.toggle('bad', Boolean(r.timed_out));
    $('exec-warnings').textContent = r.warnings?.length ? r.warnings.join('\n') : 'none';
    $('exec-stdout').textContent = r.stdout ?? '';
    $('exec-stderr').textContent = r.stderr ?? '';
    $('exec-stdout-trunc').textContent = r.stdout_truncated ? '(truncated: the rest was dropped)' : '';
    $('exec-stderr-trunc').textContent = r.stderr_truncated ? '(truncated: the rest was dropped)' : '';
    $('exec-result').hidden = false;
}

async function runExec(ev) {
    ev.preventDefault();
    if (execRunning || execDisabled || !view.selected)
        return;
    const argv = argvInputs().map((i) => i.value);
    while (argv.length > 1 && argv[argv.length - 1] === '')
        argv.pop(); // a trailing empty field is one not filled in yet
    if (argv.length === 0 || argv[0] === '') {
        execError('No command: give the command in the first field');
        argvInputs()[0]?.focus();
        return;
    }
    const timeoutText = $('exec-timeout').value.trim();
    if (!/^\d+$/.test(timeoutText) || Number(timeoutText) < 1 || Number(timeoutText) > 300000) {
        execError('Invalid timeout: give a whole number of milliseconds from 1 to 300000');
        $('exec-timeout').focus();
        return;
    }
    const href = view.selected;
    execRunning = true;
    $('exec-run').disabled = true;
    $('exec-error').hidden = true;
    $('exec-state').textContent = 'Running…';
    const r = await api('POST', `${href}/exec`,
                        { argv, timeout_ms: Number(timeoutText), output: 'text' });
    execRunning = false;
    $('exec-run').disabled = false;
    $('exec-state').textContent = '';
    if (view.selected !== href)
        return;
    if (r.ok && r.body && typeof r.body === 'object') {
        $('exec-state').textContent = 'Done.';
        showExecResult(r.body);
        return;
    }
    if (r.status === 403 && r.body?.type === 'urn:netnsd:problem:exec-disabled') {
        $('exec-result').hidden = true;
        showExecDisabled();
        return;
    }
    execError(problemText(r));
}

// --- the API -------------------------------------------------------------------------------

function token() {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

async function api(method, path, body, withToken = true) {
    const headers = { Accept: 'application/json' };
    if (withToken && token())
        headers.Authorization = `Bearer ${token()}`;
    if (body !== undefined)
        headers['Content-Type'] = 'application/json';
    try {
        const res = await fetch(path, {
            method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        let parsed = null;
        try {
            parsed = text ? JSON.parse(text) : null;
        } catch {
            parsed = null;
        }
        return { ok: res.ok, status: res.status, body: parsed, text };
    } catch (e) {
        return { ok: false, status: 0, body: null, text: String(e) };
    }
}

// problem+json in words: its title and detail.
function problemText(r) {
    if (r.status === 0)
        return `Could not reach netnsd: ${r.text}`;
    const p = r.body;
    if (p && typeof p === 'object' && (p.title || p.detail)) {
        let text = [p.title, p.detail].filter(Boolean).join(': ');
        if (r.status === 401)
            text += ' (check the admin token)';
        return text;
    }
    return `HTTP ${r.status}${r.text ? `: ${r.text.slice(0, 200)}` : ''}`;
}

function adminResult(r, okText) {
    const err = $('admin-error');
    const ok = $('admin-ok');
    if (r.ok) {
        err.hidden = true;
        ok.textContent = okText;
        ok.hidden = false;
    } else {
        ok.hidden = true;
        err.textContent = problemText(r);
        err.hidden = false;
    }
}

// "", "auto" or a number; undefined when it is none of these.
function parseNsid(text) {
    const t = text.trim();
    if (t === '')
        return null;
    if (t === 'auto')
        return 'auto';
    if (/^\d+$/.test(t))
        return Number(t);
    return undefined;
}

async function createNamespace(ev) {
    ev.preventDefault();
    const name = $('create-name').value;
    const nsid = parseNsid($('create-nsid').value);
    if (nsid === undefined) {
        adminResult({ ok: false, status: 400, body: { title: 'Invalid nsid',
                      detail: 'leave it empty, or give a number or "auto"' } });
        return;
    }
    const body = { name };
    if (nsid !== null)
        body.nsid = nsid;
    const r = await api('POST', '/api/v1/netns', body);
    adminResult(r, `Created ${name}.`);
    if (r.ok)
        $('create-name').value = '';
}

async function deleteNamespace(entry) {
    const pids = await api('GET', `${entry.href}/pids`, undefined, false);
    $('confirm-text').textContent = `Delete the name "${entry.name}"?`;
    $('confirm-pids').textContent = !pids.ok ? `Processes inside: unknown (${problemText(pids)})`
        : pids.body.pids.length
            ? `Processes are still inside (${pids.body.pids.join(', ')}): the namespace ` +
              'lives on after its name is deleted.'
            : 'No process is inside: the namespace goes away with its name.';
    const answer = await ask($('confirm'));
    if (answer !== 'ok')
        return;
    const r = await api('DELETE', entry.href);
    let text = `Deleted ${entry.name}.`;
    if (r.ok && r.body?.namespace_alive)
        text += ` The namespace lives on (processes ${r.body.pids.join(', ')}).`;
    adminResult(r, text);
}

async function setNsid(entry) {
    $('nsid-for').textContent = `For "${entry.name}"`;
    $('nsid-value').value = '';
    const answer = await ask($('nsid-dialog'));
    if (answer !== 'ok')
        return;
    const nsid = parseNsid($('nsid-value').value);
    if (nsid === undefined || nsid === null) {
        adminResult({ ok: false, status: 400, body: { title: 'Invalid nsid',
                      detail: 'give a number or "auto"' } });
        return;
    }
    const r = await api('PUT', `${entry.href}/nsid`, { nsid });
    adminResult(r, `Set the nsid of ${entry.name}.`);
}

function ask(dialog) {
    return new Promise((resolve) => {
        dialog.returnValue = '';
        dialog.addEventListener('close', () => resolve(dialog.returnValue), { once: true });
        dialog.showModal();
    });
}

function useToken(value) {
    if (value)
        sessionStorage.setItem(TOKEN_KEY, value);
    else
        sessionStorage.removeItem(TOKEN_KEY);
    document.body.classList.toggle('has-token', Boolean(value));
    $('token-state').textContent = value ? 'Token set for this tab.' : 'No token: read only.';
    $('token').value = '';
    invalidate('table');
}

// --- a namespace's links -------------------------------------------------------------------
// The links of one namespace, named (from the table) or not (from All namespaces, or a peer's
// link): GET .../links every 2 s while the panel is open and the tab is visible, and rx/tx
// rates from the counters of two successive reads. The server keeps a namespace's reading for
// up to 1 s, so a rate is over the time between two reads as this page saw them, give or take
// that second.

const LINKS_POLL_MS = 2000;
const linksView = {
    target: null,                 // { key, path, title, href? } of the namespace shown
    timer: null,
    seq: 0,                       // bumped on every change of target: a late answer is dropped
    reading: null,                // the seq of the read under way, if any
    gone: false,                  // the namespace went away (404): polling stopped
    links: [],
    names: null,                  // the answer's names and ns_id, for the heading
    nsId: null,
    prev: new Map(),              // link key -> { at, counters } of the previous read
    rates: new Map(),             // link key -> { rx, tx, rxp, txp } per second
    updated: null,
};

function linkKey(l) {
    return `${l.ifindex}\u0000${l.name}`;
}

// 1234 -> "1.2 kB"; SI units, as network rates are counted.
function humanBytes(n) {
    const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
        n /= 1000;
        ++i;
    }
    return `${i === 0 ? Math.round(n) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[i]}`;
}

function humanRate(bytesPerSecond, packetsPerSecond) {
    const p = packetsPerSecond < 10 ? packetsPerSecond.toFixed(1) : String(Math.round(packetsPerSecond));
    return `${humanBytes(bytesPerSecond)}/s, ${p} pkt/s`;
}

function namedLinksTarget(href) {
    const e = entries.get(href);
    return { key: `netns ${href}`, path: `${href}/links`, title: e ? e.name : href, href };
}

function hostLinksTarget(nsId) {
    const n = hostNs.get(nsId);
    const names = n ? n.names.map((x) => x.name).join(', ') : '';
    return { key: `ns ${nsId}`, path: `/api/v1/namespaces/${nsId}/links`,
             title: names || `ns_id ${nsId}` };
}

function openLinks(target, { focus = false } = {}) {
    const same = linksView.target?.key === target.key && !$('links').hidden;
    if (!same) {
        clearTimeout(linksView.timer);
        linksView.timer = null;
        ++linksView.seq;
        Object.assign(linksView, { target, gone: false, links: [], names: null, nsId: null,
                                   updated: null });
        linksView.prev.clear();
        linksView.rates.clear();
        $('links-error').hidden = true;
        $('links-state').textContent = 'loading…';
        renderLinks();
        $('links').hidden = false;
        pollLinks();
    }
    if (focus) {
        $('links').scrollIntoView({ block: 'nearest' });
        $('links-title').focus();
    }
}

function closeLinks() {
    clearTimeout(linksView.timer);
    linksView.timer = null;
    ++linksView.seq;
    linksView.target = null;
    $('links').hidden = true;
    if (location.hash.startsWith('#links='))
        history.replaceState(null, '', location.pathname + location.search);
}

async function pollLinks() {
    clearTimeout(linksView.timer);
    linksView.timer = null;
    const target = linksView.target;
    if (!target || linksView.gone || document.visibilityState !== 'visible')
        return;
    const seq = linksView.seq;
    if (linksView.reading === seq)
        return; // one read at a time: the one under way schedules the next
    linksView.reading = seq;
    const r = await api('GET', target.path);
    if (linksView.reading === seq)
        linksView.reading = null;
    if (seq !== linksView.seq)
        return;
    const err = $('links-error');
    if (r.ok && r.body && Array.isArray(r.body.links)) {
        applyLinks(r.body, performance.now());
        err.hidden = true;
    } else {
        err.textContent = problemText(r) + (r.status === 404 ? ' (it is gone: no longer read)' : '');
        err.hidden = false;
        if (r.status === 404) {
            linksView.gone = true;
            $('links-state').textContent = '';
            return;
        }
    }
    if (document.visibilityState === 'visible' && linksView.timer === null)
        linksView.timer = setTimeout(pollLinks, LINKS_POLL_MS);
}

function applyLinks(body, at) {
    const seen = new Set();
    for (const l of body.links) {
        const key = linkKey(l);
        seen.add(key);
        const before = linksView.prev.get(key);
        const c = l.counters;
        if (before && c && before.counters && at > before.at) {
            const s = (at - before.at) / 1000;
            const d = (a, b) => (a >= b ? (a - b) / s : null); // a reset counter: no rate
            const rate = { rx: d(c.rx_bytes, before.counters.rx_bytes),
                           tx: d(c.tx_bytes, before.counters.tx_bytes),
                           rxp: d(c.rx_packets, before.counters.rx_packets),
                           txp: d(c.tx_packets, before.counters.tx_packets) };
            linksView.rates.set(key, rate);
        }
        linksView.prev.set(key, { at, counters: c });
    }
    for (const key of [...linksView.prev.keys()])
        if (!seen.has(key)) {
            linksView.prev.delete(key);
            linksView.rates.delete(key);
        }
    linksView.links = body.links;
    linksView.names = body.names;
    linksView.nsId = body.ns_id;
    linksView.updated = new Date();
    const t = linksView.updated;
    const two = (n) => String(n).padStart(2, '0');
    $('links-state').textContent = `read at ${two(t.getHours())}:${two(t.getMinutes())}:` +
        `${two(t.getSeconds())}, every ${LINKS_POLL_MS / 1000} s` +
        (body.read_by === 'setns' ? ' (read by a moment\'s setns: peers are not named)' : '');
    renderLinks();
}

// A namespace with no name, as the page knows it: netnsd's own, or its ns_id.
function unnamedNs(nsId) {
    const self = hostNs.get(nsId)?.is_self ??
        topo.data?.nodes.find((n) => n.type === 'namespace' && n.ns_id === nsId)?.is_self;
    return self ? `netnsd's own namespace (ns_id ${nsId})` : `ns_id ${nsId}`;
}

function peerCell(tr, peer) {
    const td = cell(tr, '', 'peer');
    if (!peer) {
        td.textContent = '—';
        return;
    }
    const where = peer.netns ?? (peer.ns_id === null ? 'a namespace netnsd cannot name'
                                                     : unnamedNs(peer.ns_id));
    const text = `${peer.ifname ?? `ifindex ${peer.ifindex}`} in ${where}`;
    if (peer.ns_id === null) {
        td.textContent = text;
        return;
    }
    const a = document.createElement('a');
    a.href = `#links=ns:${peer.ns_id}`;
    a.textContent = text;
    a.title = `Show the links of ${where}`;
    td.append(a);
}

function trafficCell(tr, rate, bytes, packets, errors, dropped, cls) {
    const td = cell(tr, '', cls);
    const r = document.createElement('span');
    r.className = 'rate';
    if (rate === undefined)
        r.textContent = 'measuring…';
    else if (rate === null)
        r.textContent = '—';
    else
        r.textContent = rate;
    const total = document.createElement('span');
    total.className = 'total muted';
    total.textContent = bytes === undefined ? '' : `${humanBytes(bytes)}, ${packets} pkt` +
        (errors ? `, ${errors} errors` : '') + (dropped ? `, ${dropped} dropped` : '');
    td.append(r, total);
}

function renderLinks() {
    const v = linksView;
    const names = v.names?.length ? v.names.join(', ') : null;
    $('links-title').textContent = `Links in ${names ?? (v.nsId !== null ? unnamedNs(v.nsId)
                                                                            : v.target?.title ?? '')}`;
    const fragment = document.createDocumentFragment();
    for (const l of v.links) {
        const tr = document.createElement('tr');
        tr.dataset.ifindex = String(l.ifindex);
        cell(tr, l.name, 'name').title = l.flags.join(' ');
        cell(tr, l.kind ?? '—', 'kind');
        cell(tr, l.state, `state state-${l.state}`);
        cell(tr, String(l.mtu), 'mtu');
        cell(tr, l.mac ?? '—', 'mac');
        cell(tr, l.master ? l.master.name : '—', 'master');
        peerCell(tr, l.peer);
        const addrs = cell(tr, '', 'addresses');
        for (const a of l.addresses) {
            const span = document.createElement('span');
            span.className = 'addr';
            span.textContent = `${a.address}/${a.prefixlen}` +
                (a.scope === 'global' ? '' : ` (${a.scope})`);
            addrs.append(span);
        }
        if (!l.addresses.length)
            addrs.textContent = '—';
        const rate = v.rates.get(linkKey(l));
        const c = l.counters;
        const show = (bytes, packets) => (rate === undefined ? undefined
            : bytes === null || packets === null ? null : humanRate(bytes, packets));
        trafficCell(tr, c ? show(rate?.rx, rate?.rxp) : null, c?.rx_bytes, c?.rx_packets,
                    c?.rx_errors, c?.rx_dropped, 'rx');
        trafficCell(tr, c ? show(rate?.tx, rate?.txp) : null, c?.tx_bytes, c?.tx_packets,
                    c?.tx_errors, c?.tx_dropped, 'tx');
        fragment.append(tr);
    }
    $('links-body').replaceChildren(fragment);
}

// #links=ns:ID opens that namespace's links (a peer's link, or an address kept as a bookmark).
function linksFromHash() {
    const m = /^#links=ns:(\d+)$/.exec(location.hash);
    if (m)
        openLinks(hostLinksTarget(Number(m[1])), { focus: true });
}

function wireLinks() {
    $('links-close').addEventListener('click', closeLinks);
    document.addEventListener('visibilitychange', () => {
        if (!linksView.target)
            return;
        if (document.visibilityState === 'visible') {
            // Rates start again from the next two reads, not from before the tab was hidden.
            linksView.prev.clear();
            linksView.rates.clear();
            pollLinks();
        } else {
            clearTimeout(linksView.timer);
            linksView.timer = null;
        }
    });
    window.addEventListener('hashchange', linksFromHash);
    // A peer's link to the address already shown changes no hash: open it all the same.
    $('links-body').addEventListener('click', (e) => {
        const a = e.target.closest('a[href^="#links="]');
        if (a && a.hash === location.hash)
            linksFromHash();
    });
}

// --- topology ------------------------------------------------------------------------------
// GET /api/v1/topology drawn as SVG: namespaces as boxes with their bridges inside, veth pairs
// as lines labelled with the interface at each end (ending on a bridge when that end is one of
// its ports). Loaded when its panel is opened, then fetched again when the stream says
// something changed: namespaces come and go (add, delete, found, destroyed) and, from a netnsd
// that has them, link and address events. At most one fetch a second, and one more after the
// last change once the server's readings (kept up to 1 s) are younger than it.
//
// The stream is read with fetch (NDJSON), not a websocket: a websocket's failed handshake
// hides its status, and a 400 (a netnsd without link events refuses types=link) must be told
// from a network failure to fall back to the types it has.

const TOPO_GAP_MS = 1000;
const TOPO_READING_MS = 1100;
const TOPO_TYPES = 'add,delete,destroyed,found,link,address';
const TOPO_TYPES_WITHOUT_LINKS = 'add,delete,destroyed,found';
const SVG_NS = 'http://www.w3.org/2000/svg';

// Sizes of the drawing, in SVG units (pixels at scale 1).
const BOX_W = 160;                // a namespace's box; wider for a namespace with many pairs
const BOX_HEAD = 46;              // its name and ns_id; its bridges hang below
const PILL_H = 22;                // a bridge inside it
const PILL_GAP = 6;
const PER_PAIR_W = 44;            // a hub's box gets this much width per veth pair
const GAP_X = 90;                 // room for the labels of a pair between neighbours
const GAP_Y = 80;                 // room for the labels between rows
const MARGIN = 24;
const MAX_COLUMNS = 6;
const LONE_UNNAMED_MAX = 50;      // unnamed namespaces with no pair drawn, at most

const topo = {
    open: false,
    data: null,
    timer: null,
    fetching: false,
    lastStart: -Infinity,
    freshAfter: 0,                // a fetch must start after this to show the last change
    pendingWhileHidden: false,
    since: null,                  // the revision the stream resumes from
    types: TOPO_TYPES,
    stream: null,                 // the AbortController of the stream's fetch
    streamTimer: null,
    failures: 0,
    wiredOnly: false,
};

function scheduleTopology(notBefore = 0) {
    if (!topo.open || topo.fetching || topo.timer !== null)
        return; // a fetch under way or set checks freshAfter when it ends
    if (document.visibilityState !== 'visible') {
        topo.pendingWhileHidden = true;
        return;
    }
    const at = Math.max(topo.lastStart + TOPO_GAP_MS, notBefore);
    topo.timer = setTimeout(fetchTopology, Math.max(0, at - performance.now()));
}

function topologyChanged() {
    topo.freshAfter = performance.now() + TOPO_READING_MS;
    scheduleTopology();
}

async function fetchTopology() {
    topo.timer = null;
    topo.fetching = true;
    const started = topo.lastStart = performance.now();
    if (!topo.data)
        $('topology-state').textContent = 'loading…';
    const r = await api('GET', '/api/v1/topology');
    topo.fetching = false;
    if (!topo.open)
        return;
    const err = $('topology-error');
    if (r.ok && r.body && Array.isArray(r.body.nodes) && Array.isArray(r.body.edges)) {
        topo.data = r.body;
        err.hidden = true;
        if (topo.since === null)
            topo.since = r.body.revision;
        renderTopology();
        if (!topo.stream && topo.streamTimer === null)
            followTopology();
        else
            describeTopologyFeed();
    } else {
        err.textContent = problemText(r);
        err.hidden = false;
        topo.freshAfter = performance.now() + BACKOFF_MAX_MS; // try again, without hurry
    }
    if (started < topo.freshAfter)
        scheduleTopology(topo.freshAfter);
}

function describeTopologyFeed() {
    if (!topo.stream)
        return;
    $('topology-state').textContent = topo.types === TOPO_TYPES
        ? 'live: redrawn on namespace events, and on link and address events when netnsd ' +
          'follows them (--watch-links)'
        : 'live: redrawn when namespaces come and go (this netnsd sends no link events: ' +
          'Refresh shows other changes)';
}

async function followTopology() {
    const ctrl = new AbortController();
    topo.stream = ctrl;
    const headers = { Accept: 'application/x-ndjson' };
    if (token())
        headers.Authorization = `Bearer ${token()}`;
    let res;
    try {
        res = await fetch(`/api/v1/events?since=${topo.since}&types=${topo.types}`,
                          { headers, signal: ctrl.signal });
    } catch {
        retryTopologyStream(ctrl);
        return;
    }
    if (topo.stream !== ctrl)
        return;
    if (!res.ok) {
        const text = await res.text().catch(() => '');
        if (res.status === 400 && topo.types === TOPO_TYPES) {
            topo.types = TOPO_TYPES_WITHOUT_LINKS;
            topo.stream = null;
            followTopology();
            return;
        }
        let body = null;
        try {
            body = JSON.parse(text);
        } catch {
            body = null;
        }
        $('topology-error').textContent =
            `The event stream: ${problemText({ status: res.status, body, text })}`;
        $('topology-error').hidden = false;
        retryTopologyStream(ctrl);
        return;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = '';
    for (;;) {
        let chunk;
        try {
            chunk = await reader.read();
        } catch {
            break;
        }
        if (chunk.done || topo.stream !== ctrl)
            break;
        buffered += chunk.value;
        let nl;
        while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl);
            buffered = buffered.slice(nl + 1);
            let msg;
            try {
                msg = JSON.parse(line);
            } catch {
                continue;
            }
            onTopologyMessage(msg);
        }
    }
    retryTopologyStream(ctrl);
}

function onTopologyMessage(msg) {
    if (msg.type === 'hello') {
        topo.failures = 0;
        describeTopologyFeed();
        return;
    }
    // hello's revision is the newest; the others are what was applied, so resuming from them
    // misses nothing.
    if (typeof msg.revision === 'number')
        topo.since = msg.revision;
    topologyChanged();
}

function retryTopologyStream(ctrl) {
    if (topo.stream !== ctrl)
        return; // closed, or replaced
    topo.stream = null;
    if (!topo.open)
        return;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** topo.failures++);
    $('topology-state').textContent = `reconnecting in ${(delay / 1000).toFixed(1)} s`;
    topo.streamTimer = setTimeout(() => {
        topo.streamTimer = null;
        if (topo.open && !topo.stream)
            followTopology();
    }, delay);
}

function openTopology() {
    topo.open = true;
    topo.since = null;
    topo.failures = 0;
    topo.freshAfter = 0;
    scheduleTopology();
}

function closeTopology() {
    topo.open = false;
    clearTimeout(topo.timer);
    topo.timer = null;
    clearTimeout(topo.streamTimer);
    topo.streamTimer = null;
    const ctrl = topo.stream;
    topo.stream = null;
    ctrl?.abort();
}

// --- the drawing ---

function nsLabel(n) {
    if (n.names.length)
        return n.names.length > 1 ? `${n.names[0]} (+${n.names.length - 1})` : n.names[0];
    return n.is_self ? "netnsd's own" : `ns_id ${n.ns_id}`;
}

// The name an end has in data attributes and the table: its namespace's first name, or its
// ns_id.
function nsKey(n) {
    return n.names[0] ?? `ns_id:${n.ns_id}`;
}

function topologyModel(data) {
    const spaces = new Map();     // ns_id -> namespace node, with its bridges and pairs
    for (const n of data.nodes)
        if (n.type === 'namespace')
            spaces.set(n.ns_id, { ...n, bridges: [], degree: 0, neighbours: new Set() });
    const bridges = new Map();    // id -> bridge node, with its ports
    for (const n of data.nodes) {
        const ns = n.type === 'bridge' ? spaces.get(n.ns_id) : null;
        if (ns) {
            const b = { ...n, ports: [], ns };
            bridges.set(n.id, b);
            ns.bridges.push(b);
        }
    }
    const portOf = new Map();     // "ns_id:ifindex" of a port -> its bridge
    const ports = [];
    for (const e of data.edges) {
        const b = e.type === 'bridge_port' ? bridges.get(e.bridge) : null;
        if (b) {
            b.ports.push(e.port);
            portOf.set(`${e.port.ns_id}:${e.port.ifindex}`, b);
            ports.push({ port: e.port, bridge: b });
        }
    }
    const pairs = [];
    for (const e of data.edges) {
        if (e.type !== 'veth')
            continue;
        const ends = e.ends.map((end) => ({ ...end, ns: spaces.get(end.ns_id),
                                            bridge: portOf.get(`${end.ns_id}:${end.ifindex}`) }));
        if (!ends[0].ns || !ends[1].ns)
            continue;
        pairs.push(ends);
        for (const [a, b] of [[ends[0], ends[1]], [ends[1], ends[0]]]) {
            ++a.ns.degree;
            a.ns.neighbours.add(b.ns);
        }
    }
    const byName = (x, y) => (x < y ? -1 : x > y ? 1 : 0);
    for (const ns of spaces.values())
        ns.bridges.sort((x, y) => byName(x.ifname, y.ifname));
    return { spaces, bridges, pairs, ports, byName };
}

// A deterministic layout. Each group of namespaces wired together is a block, laid out in
// rows by distance from its most wired namespace (its neighbours in the next row, each row
// ordered by where its neighbours in the row above are); a namespace with many pairs gets a
// wider box, so that its lines and labels spread along it. The blocks, then the namespaces
// with no pair, flow left to right in rows. Ties go named before unnamed, by name, then ns_id.
function topologyLayout(model) {
    const { spaces, byName } = model;
    const base = (x, y) => (x.names.length ? 0 : 1) - (y.names.length ? 0 : 1) ||
        (y.is_self ? 1 : 0) - (x.is_self ? 1 : 0) || byName(nsLabel(x), nsLabel(y)) ||
        x.ns_id - y.ns_id;
    const all = [...spaces.values()].sort(base);
    // A namespace with no pair and no bridge is drawn unless the reader asked for the wired
    // ones only; the unnamed ones among them only while they are few (a host with thousands of
    // process-held namespaces would otherwise be a wall of boxes that say nothing of wiring:
    // All namespaces on the host lists them).
    const lone = all.filter((n) => !n.degree && !n.bridges.length);
    const hideUnnamed = lone.filter((n) => !n.names.length).length > LONE_UNNAMED_MAX;
    const drawn = (n) => n.degree || n.bridges.length ||
        (!topo.wiredOnly && (n.names.length || !hideUnnamed));
    const shownCount = all.filter(drawn).length;
    const columns = Math.max(3, Math.min(MAX_COLUMNS, Math.ceil(Math.sqrt(shownCount * 1.5))));
    const width = columns * (BOX_W + GAP_X) - GAP_X;
    for (const n of all) {
        n.w = Math.min(width, Math.max(BOX_W, n.degree * PER_PAIR_W));
        n.h = BOX_HEAD + n.bridges.length * (PILL_H + PILL_GAP);
    }

    // The blocks: one per group of wired namespaces, in rows; then one per lone namespace.
    const blocks = [];
    const seen = new Set();
    const roots = all.filter((n) => n.degree).sort((x, y) => y.degree - x.degree ||
        y.bridges.length - x.bridges.length || base(x, y));
    for (const root of roots) {
        if (seen.has(root))
            continue;
        seen.add(root);
        const layers = [[root]];
        for (;;) {
            const above = layers[layers.length - 1];
            const index = new Map(above.map((n, i) => [n, i]));
            const next = [];
            for (const n of above)
                for (const m of [...n.neighbours].sort(base))
                    if (!seen.has(m)) {
                        seen.add(m);
                        next.push(m);
                    }
            if (!next.length)
                break;
            const centre = (n) => {
                const at = [...n.neighbours].filter((m) => index.has(m)).map((m) => index.get(m));
                return at.reduce((a, b) => a + b, 0) / at.length;
            };
            next.sort((x, y) => centre(x) - centre(y) || base(x, y));
            layers.push(next);
        }
        blocks.push(blockOf(layers, width));
    }
    for (const n of all)
        if (!seen.has(n) && drawn(n))
            blocks.push(blockOf([[n]], width));

    // The blocks in rows.
    const placed = [];
    let x = MARGIN;
    let y = MARGIN;
    let rowH = 0;
    for (const b of blocks) {
        if (x > MARGIN && x + b.w > MARGIN + width) {
            x = MARGIN;
            y += rowH + GAP_Y;
            rowH = 0;
        }
        for (const n of b.nodes) {
            n.x += x;
            n.y += y;
            placed.push(n);
        }
        x += b.w + GAP_X;
        rowH = Math.max(rowH, b.h);
    }
    for (const n of placed)
        n.bridges.forEach((br, i) => {
            br.x = n.x + 8;
            br.y = n.y + BOX_HEAD + PILL_GAP + i * (PILL_H + PILL_GAP);
            br.w = n.w - 16;
            br.h = PILL_H;
        });
    const right = Math.max(MARGIN, ...placed.map((n) => n.x + n.w));
    return { placed, width: right + MARGIN, height: y + rowH + MARGIN };
}

// Layers of boxes as rows (a long layer wraps), each row centred; positions from (0, 0).
function blockOf(layers, width) {
    const rows = [];
    for (const layer of layers) {
        let row = [];
        let w = 0;
        for (const n of layer) {
            if (row.length && w + GAP_X + n.w > width) {
                rows.push({ row, w });
                row = [];
                w = 0;
            }
            w += (row.length ? GAP_X : 0) + n.w;
            row.push(n);
        }
        rows.push({ row, w });
    }
    const blockW = Math.max(...rows.map((r) => r.w));
    let y = 0;
    const nodes = [];
    for (const { row, w } of rows) {
        let x = (blockW - w) / 2;
        for (const n of row) {
            n.x = x;
            n.y = y;
            x += n.w + GAP_X;
            nodes.push(n);
        }
        y += Math.max(...row.map((n) => n.h)) + GAP_Y;
    }
    return { nodes, w: blockW, h: y - GAP_Y };
}

function svg(tag, attrs = {}, text) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs))
        el.setAttribute(k, String(v));
    if (text !== undefined)
        el.textContent = text;
    return el;
}

function endText(end) {
    const where = end.netns ?? nsLabel(end.ns);
    return `${end.ifname} in ${where}` + (end.bridge ? ` (port of ${end.bridge.ifname})` : '');
}

// Where each pair's line leaves its box (or bridge): on the side facing the other end, the
// lines of one side spread along it in the order of where they go, so that they leave a box
// with many pairs side by side, without crossing near it.
function attachPoints(pairs) {
    const sides = new Map();      // rect -> side -> [{ slot, toward }]
    const rectOf = (end) => end.bridge ?? end.ns;
    const centre = (r) => [r.x + r.w / 2, r.y + r.h / 2];
    const slots = pairs.map((ends) => ends.map((end, i) => {
        const r = rectOf(end);
        const [ox, oy] = centre(rectOf(ends[1 - i]));
        const side = oy > r.y + r.h ? 'bottom' : oy < r.y ? 'top'
            : ox >= r.x + r.w / 2 ? 'right' : 'left';
        const slot = { r, side, toward: side === 'top' || side === 'bottom' ? ox : oy };
        if (!sides.has(r))
            sides.set(r, new Map());
        const list = sides.get(r).get(side) ?? [];
        list.push(slot);
        sides.get(r).set(side, list);
        return slot;
    }));
    for (const bySide of sides.values())
        for (const [side, list] of bySide) {
            list.sort((a, b) => a.toward - b.toward);
            list.forEach((s, i) => {
                const f = (i + 1) / (list.length + 1);
                const { r } = s;
                s.x = side === 'left' ? r.x : side === 'right' ? r.x + r.w : r.x + r.w * f;
                s.y = side === 'top' ? r.y : side === 'bottom' ? r.y + r.h : r.y + r.h * f;
                s.nth = i;
                s.crowded = list.length > 3;
            });
        }
    return slots;
}

function drawPair(ends, slots, loopIndex) {
    const g = svg('g', { class: `edge${ends.some((e) => e.bridge) ? ' port' : ''}`,
                         'data-type': 'veth' });
    ['a', 'b'].forEach((k, i) => {
        g.dataset[k] = `${nsKey(ends[i].ns)}/${ends[i].ifname}`;
        g.dataset[`${k}Bridge`] = ends[i].bridge ? `${nsKey(ends[i].ns)}/${ends[i].bridge.ifname}` : '';
    });
    g.append(svg('title', {}, `veth pair: ${endText(ends[0])} — ${endText(ends[1])}`));
    if (ends[0].ns === ends[1].ns) {
        // Both ends in one namespace: a loop on its right side.
        const n = ends[0].ns;
        const x = n.x + n.w;
        const cy = n.y + 14 + loopIndex * 12;
        g.append(svg('path', { class: 'edge-line',
                               d: `M ${x} ${cy - 5} C ${x + 36} ${cy - 24}, ` +
                                  `${x + 36} ${cy + 24}, ${x} ${cy + 5}` }));
        g.append(svg('text', { class: 'edge-label', x: x + 30, y: cy, 'text-anchor': 'start',
                               'dominant-baseline': 'middle' },
                     `${ends[0].ifname} ⇄ ${ends[1].ifname}`));
        return g;
    }
    const [s, t] = slots;
    g.append(svg('line', { class: 'edge-line', x1: s.x, y1: s.y, x2: t.x, y2: t.y }));
    const len = Math.hypot(t.x - s.x, t.y - s.y) || 1;
    const ux = (t.x - s.x) / len;
    const uy = (t.y - s.y) / len;
    // A label beside its end of the line: on a left or right side it starts at the end and
    // grows away from the box; on a top or bottom side it is centred on the line, alternately
    // nearer and farther where many lines leave one side.
    const label = (slot, dir, text) => {
        const flat = slot.side === 'left' || slot.side === 'right';
        const away = flat ? 6 : 14 + (slot.crowded ? (slot.nth % 2) * 14 : 0);
        g.append(svg('text', {
            class: 'edge-label', x: slot.x + ux * away * dir,
            y: slot.y + uy * away * dir - (flat ? 8 : 0),
            'text-anchor': flat ? (slot.side === 'right' ? 'start' : 'end') : 'middle',
            'dominant-baseline': 'middle' }, text));
    };
    label(s, 1, ends[0].ifname);
    label(t, -1, ends[1].ifname);
    return g;
}

function drawSpace(n) {
    const g = svg('g', { class: `node ns${n.is_self ? ' self' : ''}${n.read ? '' : ' unread'}`,
                         tabindex: 0, role: 'button', 'data-ns-id': n.ns_id,
                         'data-name': n.names[0] ?? '',
                         'aria-label': `Namespace ${nsLabel(n)}, ns_id ${n.ns_id}` +
                             (n.bridges.length
                                 ? `, bridges ${n.bridges.map((b) => b.ifname).join(', ')}` : '') +
                             `, ${n.degree} veth pair${n.degree === 1 ? '' : 's'}: show its links` });
    g.append(svg('title', {}, `${n.names.join(', ') || nsLabel(n)} (ns_id ${n.ns_id})` +
                              (n.read ? '' : ': its links could not be read')));
    if (n.bridges.length) {
        const last = n.bridges[n.bridges.length - 1];
        g.append(svg('line', { class: 'bridge-stub', x1: n.x + n.w / 2, y1: n.y + BOX_HEAD,
                               x2: n.x + n.w / 2, y2: last.y }));
    }
    g.append(svg('rect', { class: 'node-box', x: n.x, y: n.y, width: n.w, height: BOX_HEAD, rx: 6 }));
    g.append(svg('text', { class: 'node-label', x: n.x + n.w / 2, y: n.y + 19, 'text-anchor': 'middle' },
                 nsLabel(n)));
    g.append(svg('text', { class: 'node-sub', x: n.x + n.w / 2, y: n.y + 36, 'text-anchor': 'middle' },
                 n.read ? `ns_id ${n.ns_id}` : `ns_id ${n.ns_id}, not read`));
    for (const b of n.bridges) {
        const bg = svg('g', { class: 'bridge', 'data-name': `${nsKey(n)}/${b.ifname}`,
                              'data-ports': b.ports.map((p) => p.ifname).sort().join(',') });
        bg.append(svg('title', {}, `bridge ${b.ifname} in ${nsLabel(n)}; ports: ` +
                                   (b.ports.map((p) => p.ifname).join(', ') || 'none')));
        bg.append(svg('rect', { class: 'bridge-box', x: b.x, y: b.y, width: b.w, height: b.h, rx: 11 }));
        bg.append(svg('text', { class: 'bridge-label', x: b.x + b.w / 2, y: b.y + b.h / 2,
                                'text-anchor': 'middle', 'dominant-baseline': 'middle' },
                      `bridge ${b.ifname}`));
        g.append(bg);
    }
    return g;
}

function renderTopology() {
    const model = topologyModel(topo.data);
    const { placed, width, height } = topologyLayout(model);
    const shown = new Set(placed);
    const root = $('topology-svg');
    root.setAttribute('viewBox', `0 0 ${width} ${height}`);
    root.setAttribute('width', String(width));
    root.setAttribute('height', String(height));
    const nodes = svg('g', { class: 'nodes' });
    for (const n of placed)
        nodes.append(drawSpace(n));
    // Lines under the boxes: a line that passes behind a box never hides its name.
    const edges = svg('g', { class: 'edges' });
    const pairs = model.pairs.filter((ends) => shown.has(ends[0].ns) && shown.has(ends[1].ns));
    const slots = attachPoints(pairs.filter((ends) => ends[0].ns !== ends[1].ns));
    const loops = new Map();
    let next = 0;
    for (const ends of pairs) {
        if (ends[0].ns === ends[1].ns) {
            const i = loops.get(ends[0].ns) ?? 0;
            loops.set(ends[0].ns, i + 1);
            edges.append(drawPair(ends, null, i));
        } else
            edges.append(drawPair(ends, slots[next++], 0));
    }
    root.replaceChildren(edges, nodes);

    const rows = document.createDocumentFragment();
    const row = (...texts) => {
        const tr = document.createElement('tr');
        for (const t of texts)
            cell(tr, t);
        rows.append(tr);
    };
    for (const ends of model.pairs)
        row('veth pair', endText(ends[0]), endText(ends[1]));
    for (const { port, bridge } of model.ports)
        row('bridge port', `${port.ifname} in ${port.netns ?? nsLabel(bridge.ns)}`,
            `bridge ${bridge.ifname} in ${nsLabel(bridge.ns)}`);
    $('topology-body').replaceChildren(rows);
    const count = (n, one) => `${n} ${one}${n === 1 ? '' : one.endsWith('h') ? 'es' : 's'}`;
    $('topology-count').textContent = `${count(model.spaces.size, 'namespace')}, ` +
        `${count(model.bridges.size, 'bridge')}, ${count(model.pairs.length, 'veth pair')}` +
        (placed.length < model.spaces.size
            ? `; ${model.spaces.size - placed.length} with no pair or bridge not drawn` : '');
}

function wireTopology() {
    $('topology').addEventListener('toggle', () => {
        if ($('topology').open)
            openTopology();
        else
            closeTopology();
    });
    $('topology-refresh').addEventListener('click', () => {
        topo.freshAfter = 0;
        scheduleTopology();
    });
    $('topology-wired').addEventListener('change', (e) => {
        topo.wiredOnly = e.target.checked;
        if (topo.data)
            renderTopology();
    });
    const open = (e) => {
        const g = e.target.closest?.('g.node[data-ns-id]');
        if (g)
            openLinks(hostLinksTarget(Number(g.dataset.nsId)), { focus: true });
    };
    $('topology-svg').addEventListener('click', open);
    $('topology-svg').addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') {
            e.preventDefault();
            open(e);
        }
    });
    document.addEventListener('visibilitychange', () => {
        if (document.visibilityState === 'visible' && topo.pendingWhileHidden) {
            topo.pendingWhileHidden = false;
            scheduleTopology();
        }
    });
}

// --- wiring --------------------------------------------------------------------------------

// --- all namespaces of the host ----------------------------------------------------------
// Loaded when its panel is first opened: GET /api/v1/namespaces, then the stream from that
// revision with the inventory's types (found, holders, destroyed), so nothing between the two
// is missed. A `reset` (the history moved on) loads the list again.

const HOST_PAGE = 100;
const hostNs = new Map();         // ns_id -> the namespace, as the API shows it
const hostView = { owner: '', leaks: false, page: 0 };
let hostRevision = null;
let hostSocket = null;
let hostFailures = 0;
let hostLoading = false;

async function loadHost() {
    if (hostLoading)
        return;
    hostLoading = true;
    $('host-state').textContent = 'loading…';
    const r = await api('GET', '/api/v1/namespaces', undefined, false);
    hostLoading = false;
    if (!r.ok || !r.body || !Array.isArray(r.body.namespaces)) {
        $('host-state').textContent = problemText(r);
        setTimeout(loadHost, Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** hostFailures++));
        return;
    }
    hostNs.clear();
    for (const n of r.body.namespaces)
        hostNs.set(n.ns_id, n);
    hostRevision = r.body.revision;
    invalidate('host');
    connectHost();
}

function connectHost() {
    if (hostSocket)
        hostSocket.close();
    const ws = openStream(`since=${hostRevision}&types=found,holders,destroyed`, (msg) => {
        if (hostSocket !== ws)
            return;
        if (msg.type === 'hello') {
            hostFailures = 0;
            $('host-state').textContent = 'live';
        } else if (msg.type === 'reset') {
            hostSocket = null;
            ws.close();
            loadHost();
        } else if ((msg.type === 'found' || msg.type === 'holders') && msg.host) {
            hostNs.set(msg.host.ns_id, msg.host);
            hostRevision = msg.revision;
            invalidate('host');
        } else if (msg.type === 'destroyed') {
            hostNs.delete(msg.ns_id);
            hostRevision = msg.revision;
            invalidate('host');
        }
    });
    hostSocket = ws;
    ws.onclose = () => {
        if (hostSocket !== ws)
            return;
        hostSocket = null;
        const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** hostFailures++);
        $('host-state').textContent = `reconnecting in ${(delay / 1000).toFixed(1)} s`;
        setTimeout(connectHost, delay); // from the last revision applied
    };
}

function ownerText(o) {
    if (!o || o.kind === 'unknown')
        return 'unknown';
    const who = o.name ?? o.id;
    return who ? `${o.kind}: ${who}` : o.kind;
}

function renderHost() {
    const rows = [];
    for (const n of hostNs.values())
        if ((!hostView.owner || n.owner?.kind === hostView.owner) && (!hostView.leaks || n.leak))
            rows.push(n);
    rows.sort((a, b) => a.ns_id - b.ns_id);
    const pages = Math.max(1, Math.ceil(rows.length / HOST_PAGE));
    hostView.page = Math.min(hostView.page, pages - 1);
    const start = hostView.page * HOST_PAGE;
    const fragment = document.createDocumentFragment();
    for (const n of rows.slice(start, start + HOST_PAGE)) {
        const tr = document.createElement('tr');
        tr.dataset.nsId = String(n.ns_id);
        tr.tabIndex = 0;
        tr.title = 'Show its links';
        if (n.leak)
            tr.className = 'leak';
        cell(tr, n.is_self ? `${n.ns_id} (netnsd's own)` : String(n.ns_id));
        cell(tr, n.names.map((x) => x.name).join(', ') || '—', 'name');
        cell(tr, ownerText(n.owner));
        cell(tr, n.held_by.length ? n.held_by.join(', ') : 'nothing (leak?)');
        cell(tr, String(n.processes.count));
        cell(tr, n.mounts.map((m) => m.path).join(', ') || '—');
        cell(tr, n.nsid === null ? '—' : String(n.nsid), 'nsid');
        fragment.append(tr);
    }
    $('host-body').replaceChildren(fragment);
    $('host-count').textContent = `${hostNs.size} in all`;
    $('host-page').textContent = rows.length === 0
        ? 'none' : `${start + 1}–${Math.min(rows.length, start + HOST_PAGE)} of ${rows.length}`;
    $('host-prev').disabled = hostView.page === 0;
    $('host-next').disabled = hostView.page >= pages - 1;
}

function wireHost() {
    $('host').addEventListener('toggle', () => {
        if ($('host').open && hostRevision === null)
            loadHost();
    });
    $('host-owner').addEventListener('change', (e) => {
        hostView.owner = e.target.value;
        hostView.page = 0;
        invalidate('host');
    });
    $('host-leaks').addEventListener('change', (e) => {
        hostView.leaks = e.target.checked;
        hostView.page = 0;
        invalidate('host');
    });
    $('host-prev').addEventListener('click', () => {
        hostView.page = Math.max(0, hostView.page - 1);
        invalidate('host');
    });
    $('host-next').addEventListener('click', () => {
        ++hostView.page;
        invalidate('host');
    });
    // A row opens the links of its namespace, by click or Enter.
    const openRow = (e) => {
        const tr = e.target.closest('tr[data-ns-id]');
        if (tr)
            openLinks(hostLinksTarget(Number(tr.dataset.nsId)), { focus: e.type === 'keydown' });
    };
    $('host-body').addEventListener('click', openRow);
    $('host-body').addEventListener('keydown', (e) => {
        if (e.key === 'Enter')
            openRow(e);
    });
}

function entryOfRow(el) {
    const tr = el.closest('tr[data-href]');
    if (!tr)
        return null;
    const href = tr.dataset.href;
    return entries.get(href) ?? highlights.get(href)?.entry ?? null;
}

function wire() {
    $('filter').addEventListener('input', (e) => {
        view.filter = e.target.value;
        view.page = 0;
        invalidate('table');
    });
    for (const th of document.querySelectorAll('#ns-table th[data-key]')) {
        th.querySelector('button').addEventListener('click', () => {
            const key = th.dataset.key;
            view.sortDir = view.sortKey === key ? -view.sortDir : 1;
            view.sortKey = key;
            invalidate('table');
        });
    }
    $('page-prev').addEventListener('click', () => {
        view.page = Math.max(0, view.page - 1);
        invalidate('table');
    });
    $('page-next').addEventListener('click', () => {
        ++view.page;
        invalidate('table');
    });
    $('page-size').addEventListener('change', (e) => {
        view.pageSize = Number(e.target.value);
        view.page = 0;
        invalidate('table');
    });
    const body = $('ns-body');
    body.addEventListener('click', (e) => {
        const entry = entryOfRow(e.target);
        if (!entry)
            return;
        const action = e.target.closest('button')?.dataset.action;
        if (action === 'delete')
            deleteNamespace(entry);
        else if (action === 'set-nsid')
            setNsid(entry);
        else if (!action)
            showDetails(entry.href);
    });
    body.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' && e.target.matches('tr[data-href]')) {
            const entry = entryOfRow(e.target);
            if (entry)
                showDetails(entry.href);
        }
    });
    $('details-refresh').addEventListener('click', () => showDetails(view.selected));
    $('details-close').addEventListener('click', () => {
        if (linksView.target?.href === view.selected)
            closeLinks();
        view.selected = null;
        $('details').hidden = true;
    });
    $('log-pause').addEventListener('click', (e) => {
        logPaused = !logPaused;
        logMissed = 0;
        logShown = false;
        e.target.textContent = logPaused ? 'Resume' : 'Pause';
        e.target.setAttribute('aria-pressed', String(logPaused));
        // Pausing freezes the log as it is at the click, now: left to the next frame, an event
        // arriving in between would be drawn into the frozen rows.
        if (logPaused)
            renderLog();
        else
            invalidate('log');
    });
    $('token-form').addEventListener('submit', (e) => {
        e.preventDefault();
        useToken($('token').value.trim());
    });
    $('token-forget').addEventListener('click', () => useToken(''));
    $('create-form').addEventListener('submit', createNamespace);
    $('exec-form').addEventListener('submit', runExec);
    $('exec-add').addEventListener('click', () => addArgv('', true));
    addArgv();
}

wire();
wireHost();
wireLinks();
wireTopology();
linksFromHash();
useToken(token());
setConnection('connecting');
connect();
