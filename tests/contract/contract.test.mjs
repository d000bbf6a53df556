// The contract test: runs the real daemon against real namespaces and checks every answer
// against openapi.yaml. It must run inside tests/support/sandbox (a private mount and network
// namespace with tmpfs on /run and /run/netns), which ctest does:
//   tests/support/sandbox node --test tests/contract/contract.test.mjs
// with NETNSD_BIN and NETNSD_PRINT_ROUTES pointing at the built binaries. The daemon runs
// four times: the second run checks what a client resuming across a restart gets, the third
// the admin API (with --enable-exec), the fourth --auth-reads (without --enable-exec). Its
// token file is in the sandbox's /run, never the host's /etc/netnsd.
// With NETNSD_CONTRACT_TLS=1 (ctest's contract_tls) all of it runs again over HTTPS: the daemon
// with --tls-cert, every client (HTTP, raw sockets, SSE, NDJSON, WebSocket) over TLS.
// Node 18.19 (Debian 12's) must be enough: node:test's test/describe/before/after, node:http,
// node:net and nothing newer (no fetch, no WebSocket, no mock timers).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, statSync, writeFileSync }
    from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { HOST, NotYet, PORT, Spec, TLS_ARGS, openStream, openWebSocket, rawExchange, rawRequest,
         request, waitFor } from './support.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SPEC_FILE = path.resolve(HERE, '../../openapi.yaml');
const NETNS_DIR = '/run/netns';
const HREF_PREFIX = '/api/v1/netns/';
const STOP_TIMEOUT_MS = 10000;
// A low --max-stream-clients, so that the 503 is reachable.
const MAX_STREAMS = 8;
// The --journal-size of the restarted daemon: smaller than what its first scan records, so
// that its journal has already dropped events.
const SMALL_JOURNAL = 4;
// Revisions start at the start time in microseconds: about 1.8e15 in 2026, far above any count.
const MIN_START_REVISION = 1e15;
// The sandbox's own /run: the admin token and the per-namespace /etc files of exec.
const RUN_DIR = '/run/netnsd-contract';
const TOKEN_FILE = `${RUN_DIR}/token`;
const ETC_NETNS_DIR = `${RUN_DIR}/etc-netns`;
// The daemon's --cni-cache-dir (libcni's results dir), where a test writes a pod's cache file.
const CNI_CACHE_DIR = `${RUN_DIR}/cni-results`;
const EXEC_OUTPUT_LIMIT = 1000;
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// --- the namespaces ------------------------------------------------------------------------

// Every entry the test makes. `bytes` is the name as the kernel has it; `name` is how the API
// shows it (U+FFFD for bytes that are not UTF-8); `href` is the exact bytes percent-encoded.
const ENTRIES = [
    { bytes: Buffer.from('alpha'), name: 'alpha', href: 'alpha', state: 'live', early: true },
    { bytes: Buffer.from('stale'), name: 'stale', href: 'stale', state: 'stale', early: true,
      make: 'touch' },
    { bytes: Buffer.from('adir'), name: 'adir', href: 'adir', state: 'stale', make: 'mkdir' },
    { bytes: Buffer.from('with space'), name: 'with space', href: 'with%20space',
      state: 'live' },
    { bytes: Buffer.from('ünïcödé'), name: 'ünïcödé',
      href: '%C3%BCn%C3%AFc%C3%B6d%C3%A9', state: 'live' },
    { bytes: Buffer.from('-lead'), name: '-lead', href: '-lead', state: 'live' },
    { bytes: Buffer.from([0x62, 0x61, 0x64, 0xff]), name: 'bad\uFFFD', href: 'bad%FF',
      state: 'live', nsid: 6 },
    { bytes: Buffer.from('blue'), name: 'blue', href: 'blue', state: 'live', nsid: 5 },
    // A second name for blue's namespace, first in byte order, so /api/v1/nsids shows it.
    { bytes: Buffer.from('azure'), name: 'azure', href: 'azure', state: 'live', nsid: 5,
      make: 'alias', of: 'blue' },
    { bytes: Buffer.from('n'.repeat(255)), name: 'n'.repeat(255), href: 'n'.repeat(255),
      state: 'live' },
];

// The bytes as printf escapes, so any name (a leading '-', a byte 0xFF) reaches `ip` exactly.
function printfEscapes(bytes) {
    return [...bytes].map((b) => `\\x${b.toString(16).padStart(2, '0')}`).join('');
}

function sh(script, ...args) {
    return execFileSync('bash', ['-c', script, 'bash', ...args], { stdio: ['ignore', 'pipe',
                                                                           'pipe'] });
}

function ipNetns(verb, bytes, ...rest) {
    sh(`ip netns ${verb} "$(printf "$1")" "\${@:2}"`, printfEscapes(bytes), ...rest);
}

function makeEntry(e) {
    const file = `${NETNS_DIR}/$(printf "$1")`;
    switch (e.make) {
    case 'touch':
        sh(`touch "${file}"`, printfEscapes(e.bytes));
        break;
    case 'mkdir':
        sh(`mkdir "${file}"`, printfEscapes(e.bytes));
        break;
    case 'alias':
        sh(`touch "${file}" && mount --bind "${NETNS_DIR}/$2" "${file}"`,
           printfEscapes(e.bytes), e.of);
        break;
    default:
        ipNetns('add', e.bytes);
    }
}

function hrefBytes(href) {
    assert.ok(href.startsWith(HREF_PREFIX), `href ${href} starts with ${HREF_PREFIX}`);
    const enc = href.slice(HREF_PREFIX.length);
    const out = [];
    for (let i = 0; i < enc.length;) {
        if (enc[i] === '%') {
            out.push(parseInt(enc.slice(i + 1, i + 3), 16));
            i += 3;
        } else {
            out.push(enc.charCodeAt(i));
            i += 1;
        }
    }
    return Buffer.from(out);
}

// --- the daemon ----------------------------------------------------------------------------

function requireEnv(name) {
    const value = process.env[name];
    if (!value)
        throw new Error(`${name} is not set: run this through ctest (ctest -R contract)`);
    return value;
}

// Refuse to touch the host's /run/netns: the sandbox mounts its own tmpfs there.
function assertSandboxed() {
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    const sandboxed = mounts.some((line) => {
        const [left, right] = line.split(' - ');
        return left?.split(' ')[4] === NETNS_DIR && right?.split(' ')[1] === 'netnsd-test-netns';
    });
    if (!sandboxed) {
        throw new Error(`${NETNS_DIR} is not the sandbox's tmpfs: run this through ` +
                        'tests/support/sandbox (ctest -R contract does)');
    }
}

const spec = new Spec(SPEC_FILE);
let daemon;
let daemonOutput = '';
let startedAt;
let token = null; // the admin token, read back from TOKEN_FILE once the daemon runs

function output() {
    return `\n--- netnsd output ---\n${daemonOutput}---`;
}

// Starts netnsd on HOST:PORT and waits until it answers /healthz.
async function startDaemon(extraArgs = []) {
    const bin = requireEnv('NETNSD_BIN');
    daemonOutput = '';
    daemon = spawn(bin, ['--listen', `${HOST}:${PORT}`, '--netns-dir', NETNS_DIR,
                         '--max-stream-clients', String(MAX_STREAMS),
                         '--token-file', TOKEN_FILE, '--cni-cache-dir', CNI_CACHE_DIR,
                         ...TLS_ARGS, ...extraArgs],
                   { stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.stdout.on('data', (c) => { daemonOutput += c; });
    daemon.stderr.on('data', (c) => { daemonOutput += c; });
    const exited = once(daemon, 'exit');
    await Promise.race([
        waitFor('the daemon to answer /healthz', async () => {
            try {
                return (await get('/healthz')).status === 200 ? true : undefined;
            } catch (e) {
                throw new NotYet(e.message); // not listening yet
            }
        }),
        exited.then(([code, signal]) => {
            throw new Error(`netnsd exited early (${code ?? signal})${output()}`);
        }),
    ]);
    token = readFileSync(TOKEN_FILE, 'utf8').trim();
}

// Stops the daemon if it runs (SIGKILL: for the `after` hooks), and waits until it has gone, so
// that the next suite's daemon finds the port free.
async function killDaemon() {
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
        const exited = once(daemon, 'exit');
        daemon.kill('SIGKILL');
        await exited;
    }
}

// What a daemon that has just started shows, before anything changes: its revision, and its
// start revision, which is that minus the events of its first scan (one `add` per live entry,
// one `nsid` per nsid that no live entry names). `at` is a time just after the answers.
// (Other sandboxes' namespaces, which the host inventory sees on a shared machine, come and go
// at any moment: the look is taken again until nothing changed while it was taken.)
async function firstLook() {
    let health, listing, nsids, at;
    for (let tries = 0; tries < 50; ++tries) {
        ({ body: health } = await getChecked('/healthz', '/healthz', 200));
        listing = await list();
        ({ body: nsids } = await getChecked('/api/v1/nsids', '/api/v1/nsids', 200));
        at = Date.now();
        if (listing.revision === health.revision && nsids.revision === health.revision)
            break;
    }
    assert.deepEqual([listing.revision, nsids.revision], [health.revision, health.revision],
                     'nothing changed while the first look was taken');
    // Every event so far: the entries' and the host inventory's (found, holders).
    const events = health.revision - health.start_revision;
    const adds = listing.namespaces.filter((e) => e.state === 'live').length;
    return { revision: health.revision, base: health.start_revision, events, adds, at };
}

// The start revision is the time the daemon started, in microseconds since the epoch.
function assertStartRevision(look, notBeforeMs) {
    assert.ok(Number.isSafeInteger(look.revision), `revision ${look.revision} is exact`);
    assert.ok(look.base > MIN_START_REVISION,
              `the start revision ${look.base} is a time in microseconds, not a count from 0`);
    assert.ok(look.base >= notBeforeMs * 1000 && look.base < (look.at + 1) * 1000,
              `the start revision ${look.base} is between ${notBeforeMs * 1000} (before ` +
              `netnsd was spawned) and ${(look.at + 1) * 1000} (after its first answers)`);
}

async function get(path) {
    return request('GET', path);
}

// GET, and check the answer against the spec's operation for `template`.
async function getChecked(template, path, expectedStatus) {
    const res = await get(path);
    const where = `GET ${path}`;
    const body = spec.checkResponse('GET', template, res, where);
    if (expectedStatus !== undefined)
        assert.equal(res.status, expectedStatus, `${where}: ${res.text}`);
    return { res, body };
}

async function list() {
    return (await getChecked('/api/v1/netns', '/api/v1/netns', 200)).body;
}

function byHref(listing) {
    return new Map(listing.namespaces.map((e) => [e.href, e]));
}

// Waits until every entry in `entries` is listed in its expected state (and nsid).
async function waitForEntries(entries) {
    const what = entries.map((e) => JSON.stringify(e.name.slice(0, 20))).join(', ');
    return waitFor(what, async () => {
        const listing = await list();
        const seen = byHref(listing);
        for (const e of entries) {
            const got = seen.get(HREF_PREFIX + e.href);
            if (!got)
                throw new NotYet(`${e.href} is not listed`);
            if (got.state !== e.state)
                throw new NotYet(`${e.href} is ${got.state}, not ${e.state}`);
            if ((e.nsid ?? null) !== got.nsid)
                throw new NotYet(`${e.href} has nsid ${got.nsid}, not ${e.nsid ?? null}`);
        }
        return listing;
    });
}

// Reads what a stream sends for a `since` the journal cannot serve: hello, a reset and a
// snapshot, all at the current revision. `next` returns one checked message.
async function readReset(next, where) {
    const hello = await next();
    assert.equal(hello.type, 'hello', where);
    const reset = await next();
    assert.deepEqual(reset, { type: 'reset', revision: hello.revision }, where);
    const snapshot = await next();
    assert.deepEqual([snapshot.type, snapshot.revision], ['snapshot', hello.revision], where);
    const listing = await list();
    if (listing.revision === snapshot.revision)
        assert.deepEqual(snapshot.namespaces, listing.namespaces, where);
    return snapshot;
}

// Every event type: the host inventory's found and holders come only when asked for, and
// take revisions between the entries' events.
const ALL_TYPES = 'types=add,delete,nsid,destroyed,found,holders';

// --- the tests -----------------------------------------------------------------------------

test('the spec lists exactly the routes the router serves', () => {
    const printed = execFileSync(requireEnv('NETNSD_PRINT_ROUTES'), { encoding: 'utf8' });
    const served = new Set(printed.split('\n').filter(Boolean).map((line) => {
        const r = JSON.parse(line);
        return `${r.method} ${r.path}`;
    }));
    const documented = new Set(spec.operations().map((o) => `${o.method} ${o.path}`));
    const undocumented = [...served].filter((r) => !documented.has(r));
    const unserved = [...documented].filter((r) => !served.has(r));
    assert.deepEqual({ undocumented, unserved }, { undocumented: [], unserved: [] });
});

// The first run of the daemon: its first look, and the last revision it had.
const firstRun = { look: null, last: null };

describe('the running daemon', () => {
    before(async () => {
        assertSandboxed();
        startedAt = Date.now();
        // Some entries exist before the daemon starts (the first scan finds them), the rest
        // appear while it runs (the watchers find them).
        for (const e of ENTRIES.filter((x) => x.early))
            makeEntry(e);
        await startDaemon();
        firstRun.look = await firstLook();
        for (const e of ENTRIES.filter((x) => !x.early)) {
            makeEntry(e);
            if (e.make !== 'alias' && e.nsid !== undefined)
                ipNetns('set', e.bytes, String(e.nsid));
        }
        await waitForEntries(ENTRIES);
    });

    after(killDaemon);

    test('the revision starts at the daemon\'s start time in microseconds, not at 0', () => {
        assertStartRevision(firstRun.look, startedAt);
        // The first scan found `alpha` live (one add) and `stale` (no event); the inventory
        // found alpha's namespace and the daemon's own.
        assert.equal(firstRun.look.adds, 1, 'the first scan found one live entry');
        assert.ok(firstRun.look.events >= 3, 'an add and two found events at least');
    });

    test('the daemon serves the openapi.yaml it was built with', async () => {
        const { res } = await getChecked('/openapi.yaml', '/openapi.yaml', 200);
        assert.ok(res.body.equals(spec.bytes),
                  'GET /openapi.yaml differs from the file: rebuild netnsd (the file is embedded)');
    });

    test('the list shows every entry, in byte order, as the spec describes it', async () => {
        const listing = await list();
        assert.ok(Number.isSafeInteger(listing.revision) &&
                  listing.revision > firstRun.look.revision, 'the later entries made events');
        const seen = byHref(listing);
        assert.equal(seen.size, listing.namespaces.length, 'hrefs are unique');
        for (const e of ENTRIES) {
            const got = seen.get(HREF_PREFIX + e.href);
            assert.ok(got, `${e.href} is listed`);
            assert.equal(got.name, e.name);
            assert.equal(got.path, `${NETNS_DIR}/${e.name}`);
            assert.ok(hrefBytes(got.href).equals(e.bytes), `${got.href} encodes the name's bytes`);
            const firstSeen = Date.parse(got.first_seen);
            assert.ok(firstSeen >= startedAt - 1000 && firstSeen <= Date.now() + 1000,
                      `first_seen ${got.first_seen} is during this test`);
            if (e.state === 'live')
                assert.ok(Number.isInteger(got.inode), `${e.href} has an inode`);
        }
        // Names in byte order: compare the exact bytes, which only the hrefs carry.
        const order = listing.namespaces.map((e) => hrefBytes(e.href));
        for (let i = 1; i < order.length; ++i) {
            const [a, b] = [listing.namespaces[i - 1].href, listing.namespaces[i].href];
            assert.ok(Buffer.compare(order[i - 1], order[i]) < 0, `${a} sorts before ${b}`);
        }
        // One namespace per `ip netns add`; the alias shares blue's.
        const azure = seen.get(`${HREF_PREFIX}azure`);
        const blue = seen.get(`${HREF_PREFIX}blue`);
        assert.deepEqual([azure.inode, azure.ns_id, azure.nsid],
                         [blue.inode, blue.ns_id, blue.nsid]);
        const live = ENTRIES.filter((e) => e.state === 'live' && e.make !== 'alias');
        const inodes = new Set(live.map((e) => seen.get(HREF_PREFIX + e.href).inode));
        assert.equal(inodes.size, live.length, 'every namespace has its own inode');
    });

    test('every entry\'s href returns that same entry', async () => {
        const listing = await list();
        assert.ok(listing.namespaces.length >= ENTRIES.length);
        for (const entry of listing.namespaces) {
            const { body } = await getChecked('/api/v1/netns/{name}', entry.href, 200);
            assert.deepEqual(body, entry);
        }
        // Escapes may be in lower case, and unreserved characters may be escaped too.
        const { body } = await getChecked('/api/v1/netns/{name}', '/api/v1/netns/b%61d%ff', 200);
        assert.equal(body.href, '/api/v1/netns/bad%FF');
    });

    test('a name that is not there is 404 not-found', async () => {
        for (const name of ['nope', 'no%20such', 'n'.repeat(254), 'alpha~']) {
            const { body } = await getChecked('/api/v1/netns/{name}', HREF_PREFIX + name, 404);
            assert.equal(body.type, 'urn:netnsd:problem:not-found');
            assert.equal(body.instance, HREF_PREFIX + name);
        }
    });

    test('an invalid name is 400 invalid-name, a malformed escape 400 bad-request', async () => {
        const cases = {
            '': 'invalid-name',
            '.': 'invalid-name',
            '..': 'invalid-name',
            '%2E%2E': 'invalid-name',
            'a%2Fb': 'invalid-name',
            'a%00b': 'invalid-name',
            [`${'n'.repeat(255)}x`]: 'invalid-name',
            'a%zz': 'bad-request',
            'a%4': 'bad-request',
            '%': 'bad-request',
        };
        for (const [name, slug] of Object.entries(cases)) {
            const { body } = await getChecked('/api/v1/netns/{name}', HREF_PREFIX + name, 400);
            assert.equal(body.type, `urn:netnsd:problem:${slug}`, `GET ${HREF_PREFIX}${name}`);
        }
    });

    test('the nsids are those `ip netns list-id` shows, with their first name', async () => {
        const { body } = await getChecked('/api/v1/nsids', '/api/v1/nsids', 200);
        const oracle = sh('ip netns list-id').toString('latin1').split('\n').filter(Boolean)
            .map((line) => Number(/^nsid (\d+)/.exec(line)[1]));
        assert.deepEqual(body.nsids.map((r) => r.nsid), oracle);
        assert.deepEqual(body.nsids.map((r) => r.nsid), [...oracle].sort((a, b) => a - b));
        const names = Object.fromEntries(body.nsids.map((r) => [r.nsid, r.name]));
        assert.equal(names[5], 'azure', 'nsid 5 shows the first of its names in byte order');
        assert.equal(names[6], 'bad\uFFFD');
    });

    test('the host inventory has every live entry\'s namespace and the daemon\'s own, as the '
         + 'spec describes them', async () => {
        const listing = await list();
        const { body } = await getChecked('/api/v1/namespaces', '/api/v1/namespaces', 200);
        const ids = body.namespaces.map((n) => n.ns_id);
        assert.deepEqual(ids, [...ids].sort((a, b) => a - b), 'sorted by ns_id');
        const byId = new Map(body.namespaces.map((n) => [n.ns_id, n]));
        for (const e of listing.namespaces.filter((x) => x.state === 'live')) {
            const h = byId.get(e.ns_id);
            assert.ok(h, `${e.name}'s namespace is in the inventory`);
            assert.ok(h.names.some((n) => n.href === e.href), `it names ${e.name}`);
            assert.ok(h.held_by.includes('name') && h.held_by.includes('mount'), e.name);
            assert.ok(h.mounts.some((m) => m.path === e.path), `${e.name}'s mount`);
        }
        const self = body.namespaces.filter((n) => n.is_self);
        assert.equal(self.length, 1, 'one is the daemon\'s own');
        assert.ok(self[0].processes.count >= 1, 'the daemon itself is in it');
        const one = await getChecked('/api/v1/namespaces/{ns_id}', self[0].href, 200);
        assert.equal(one.body.ns_id, self[0].ns_id);
        const page = await getChecked('/api/v1/namespaces/{ns_id}/processes',
                                      `${self[0].processes.href}?limit=1000`, 200);
        assert.ok(page.body.processes.some((p) => p.pid === daemon.pid), 'the daemon\'s pid');
        const leaks = await getChecked('/api/v1/namespaces', '/api/v1/namespaces?leak=true', 200);
        assert.ok(leaks.body.namespaces.every((n) => n.leak && n.held_by.length === 0));
        await getChecked('/api/v1/namespaces/{ns_id}', '/api/v1/namespaces/999999999999', 404);
        for (const bad of ['/api/v1/namespaces/x', '/api/v1/namespaces?held_by=files',
                           `${self[0].processes.href}?limit=0`])
            await getChecked(bad.includes('processes') ? '/api/v1/namespaces/{ns_id}/processes'
                             : bad.startsWith('/api/v1/namespaces?') ? '/api/v1/namespaces'
                                 : '/api/v1/namespaces/{ns_id}', bad, 400);
    });

    test('a namespace a CNI cache file names has its pod as owner, as the spec describes it',
         async () => {
        const name = 'cni-5e4d3c2b-1a09-4f8e-b7d6-c5b4a3928170';
        const uid = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
        const file = `${CNI_CACHE_DIR}/k8s-pod-network-${'a'.repeat(64)}-eth0`;
        sh(`ip netns add ${name}`);
        try {
            mkdirSync(CNI_CACHE_DIR, { recursive: true });
            writeFileSync(file, JSON.stringify({
                kind: 'cniCacheV1', containerId: 'a'.repeat(64), config: 'e30=', ifName: 'eth0',
                networkName: 'k8s-pod-network', netns: `/var/run/netns/${name}`,
                cniArgs: [['K8S_POD_NAMESPACE', 'shop'], ['K8S_POD_NAME', 'cart-0'],
                          ['K8S_POD_UID', uid]],
                result: { cniVersion: '1.0.0', ips: [{ address: '10.244.0.9/24' }] },
            }));
            const ino = statSync(`${NETNS_DIR}/${name}`).ino;
            const row = await waitFor('the pod as owner', async () => {
                const { body } = await getChecked('/api/v1/namespaces',
                                                  '/api/v1/namespaces?owner=kubernetes', 200);
                const r = body.namespaces.find((n) => n.inode === ino);
                if (!r)
                    throw new NotYet('no kubernetes namespace with its inode yet');
                return r;
            }, { timeoutMs: 30000 }); // the dir is new: found by the next sweep (5 s)
            assert.deepEqual(row.owner, { kind: 'kubernetes', id: uid, source: 'cni',
                                          name: 'shop/cart-0' });
            const one = await getChecked('/api/v1/namespaces/{ns_id}', row.href, 200);
            assert.deepEqual(one.body.owner, row.owner);
        } finally {
            sh(`rm -f "${file}"; ip netns del ${name}`);
        }
    });

    test('/healthz reports ok and counts the entries', async () => {
        const listing = await list();
        const { body } = await getChecked('/healthz', '/healthz', 200);
        assert.equal(body.status, 'ok');
        assert.equal(body.watching, true);
        assert.equal(body.netns_dir, NETNS_DIR);
        assert.equal(body.namespaces, listing.namespaces.length);
        assert.ok(body.revision >= listing.revision);
    });

    test('/ is the HTML dashboard', async () => {
        const { res } = await getChecked('/', '/', 200);
        assert.match(res.text, /<html/i);
    });

    test('a query string is ignored', async () => {
        const { body } = await getChecked('/healthz', '/healthz?verbose=1&x', 200);
        assert.equal(body.status, 'ok');
    });

    test('an absolute-form target is served like its path', async () => {
        const cases = [
            // [target, the path it stands for, the spec's path template]
            [`http://${HOST}:${PORT}/healthz`, '/healthz', '/healthz'],
            ['HTTP://elsewhere.invalid/api/v1/netns/alpha', '/api/v1/netns/alpha',
             '/api/v1/netns/{name}'],
            ['https://elsewhere.invalid:1/api/v1/netns/bad%FF?x=1', '/api/v1/netns/bad%FF',
             '/api/v1/netns/{name}'],
            ['http://elsewhere.invalid/api/v1/netns/nope', '/api/v1/netns/nope',
             '/api/v1/netns/{name}'],
            ['http://elsewhere.invalid/api/v1/nsids', '/api/v1/nsids', '/api/v1/nsids'],
            ['http://elsewhere.invalid', '/', '/'],
            ['http://elsewhere.invalid?x', '/', '/'],
        ];
        for (const [target, path, template] of cases) {
            const got = await request('GET', target);
            const want = await get(path);
            spec.checkResponse('GET', template, got, `GET ${target}`);
            assert.deepEqual([got.status, got.mediaType, got.text],
                             [want.status, want.mediaType, want.text], `GET ${target}`);
        }
        // The query of an absolute-form target reaches the event stream.
        const { body } = await getChecked('/api/v1/events',
                                          'http://elsewhere.invalid/api/v1/events?since=x', 400);
        assert.equal(body.type, 'urn:netnsd:problem:bad-request');
        const stream = await openStream('http://elsewhere.invalid/api/v1/events?snapshot=true');
        try {
            assert.equal(stream.status, 200);
            assert.equal((await stream.next()).json.type, 'hello');
            assert.equal((await stream.next()).json.type, 'snapshot');
        } finally {
            stream.close();
        }
        // Neither a path nor an absolute URI.
        for (const target of ['*', `${HOST}:${PORT}`, 'healthz']) {
            const res = await request('GET', target);
            const where = `GET ${target}`;
            assert.equal(res.status, 400, where);
            const problem = spec.checkAgainst('Problem', res, where);
            assert.equal(problem.type, 'urn:netnsd:problem:bad-request', where);
        }
    });

    test('HEAD answers like GET, without a body', async () => {
        const paths = ['/api/v1/netns', '/api/v1/netns/alpha', '/api/v1/netns/nope',
                       '/api/v1/netns/..', '/api/v1/nsids', '/healthz', '/openapi.yaml', '/'];
        for (const p of paths) {
            const got = await get(p);
            const head = await request('HEAD', p);
            assert.equal(head.status, got.status, `HEAD ${p}`);
            assert.equal(head.headers['content-type'], got.headers['content-type'], `HEAD ${p}`);
            assert.equal(Number(head.headers['content-length']), got.body.length, `HEAD ${p}`);
            assert.equal(head.body.length, 0, `HEAD ${p}`);
        }
    });

    test('other methods are 405 method-not-allowed, with Allow', async () => {
        // Checked before the token: no Authorization is sent, and none is needed for a 405.
        const paths = {
            '/api/v1/netns': 'GET, HEAD, POST, DELETE',
            '/api/v1/netns/alpha': 'GET, HEAD, DELETE',
            '/api/v1/netns/alpha/nsid': 'PUT',
            '/api/v1/netns/alpha/pids': 'GET, HEAD',
            '/api/v1/netns/alpha/exec': 'POST',
            [`/api/v1/processes/${process.pid}/netns`]: 'GET, HEAD',
            '/api/v1/nsids': 'GET, HEAD',
            '/api/v1/events': 'GET',
            '/healthz': 'GET, HEAD',
            '/openapi.yaml': 'GET, HEAD',
            '/': 'GET, HEAD',
        };
        for (const [p, allow] of Object.entries(paths)) {
            const allowed = allow.split(', ');
            const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']
                .filter((m) => !allowed.includes(m));
            for (const method of methods) {
                const res = await request(method, p, { headers: { 'content-length': '0' } });
                const where = `${method} ${p}`;
                assert.equal(res.status, 405, where);
                assert.equal(res.headers.allow, allow, where);
                assert.equal(res.mediaType, 'application/problem+json', where);
                if (method === 'HEAD')
                    continue; // no body to check
                const body = spec.checkAgainst('Problem', res, where);
                assert.equal(body.type, 'urn:netnsd:problem:method-not-allowed', where);
                assert.equal(body.status, 405, where);
            }
        }
    });

    test('an unknown path is 404 no-route', async () => {
        for (const [method, p] of [['GET', '/nope'], ['GET', '/api/v1'], ['GET', '/api/v2/netns'],
                                   ['GET', '/api/v1/netns/alpha/extra'], ['GET', '/healthz/'],
                                   ['POST', '/nope']]) {
            const res = await request(method, p, { headers: { 'content-length': '0' } });
            const where = `${method} ${p}`;
            assert.equal(res.status, 404, where);
            assert.equal(res.mediaType, 'application/problem+json', where);
            const body = spec.checkAgainst('Problem', res, where);
            assert.equal(body.type, 'urn:netnsd:problem:no-route', where);
        }
    });

    test('a body on GET is 400 unexpected-body; over 64 KiB it is 413', async () => {
        for (const size of [1, 64 * 1024]) {
            const res = await request('GET', '/healthz', { body: Buffer.alloc(size, 'x') });
            const body = spec.checkResponse('GET', '/healthz', res, `GET /healthz with ${size} B`);
            assert.equal(res.status, 400);
            assert.equal(body.type, 'urn:netnsd:problem:unexpected-body');
        }
        // The daemon answers as soon as it reads Content-Length; the body need not be sent.
        const res = await rawRequest(`GET /api/v1/netns HTTP/1.1\r\nHost: ${HOST}\r\n` +
                                     `Content-Length: ${64 * 1024 + 1}\r\n\r\n`);
        const body = spec.checkResponse('GET', '/api/v1/netns', res, 'GET with 64 KiB + 1');
        assert.equal(res.status, 413);
        assert.equal(body.type, 'urn:netnsd:problem:payload-too-large');
    });

    test('headers over 8 KiB are 431', async () => {
        const res = await rawRequest(`GET /api/v1/nsids HTTP/1.1\r\nHost: ${HOST}\r\n` +
                                     `X-Filler: ${'f'.repeat(9 * 1024)}\r\n\r\n`);
        const body = spec.checkResponse('GET', '/api/v1/nsids', res, 'GET with 9 KiB of headers');
        assert.equal(res.status, 431);
        assert.equal(body.type, 'urn:netnsd:problem:header-too-large');
    });

    test('stale entries change the list but not the revision', async () => {
        const before = await list();
        const extra = { bytes: Buffer.from('stale2'), name: 'stale2', href: 'stale2',
                        state: 'stale', make: 'touch' };
        makeEntry(extra);
        const afterTouch = await waitForEntries([extra]);
        assert.equal(afterTouch.revision, before.revision);
        assert.equal(afterTouch.namespaces.length, before.namespaces.length + 1);
    });

    test('the revision grows with add, nsid, delete and destroyed events', async () => {
        const temp = { bytes: Buffer.from('temp'), name: 'temp', href: 'temp', state: 'live' };
        const r0 = (await list()).revision;

        ipNetns('add', temp.bytes);
        const r1 = (await waitForEntries([temp])).revision;
        assert.ok(r1 > r0, `add: ${r1} > ${r0}`);

        ipNetns('set', temp.bytes, '9');
        const r2 = (await waitForEntries([{ ...temp, nsid: 9 }])).revision;
        assert.ok(r2 > r1, `nsid: ${r2} > ${r1}`);

        // `ip netns del` unmounts, then unlinks; the kernel frees the namespace (RTM_DELNSID)
        // once nothing holds it. That is one `delete` and one `destroyed` event, in either order.
        ipNetns('del', temp.bytes);
        const r3 = await waitFor('temp to be deleted and nsid 9 destroyed', async () => {
            const listing = await list();
            const { body } = await getChecked('/api/v1/nsids', '/api/v1/nsids', 200);
            const gone = !byHref(listing).has(`${HREF_PREFIX}temp`) &&
                !body.nsids.some((r) => r.nsid === 9);
            return gone ? body.revision : undefined;
        });
        assert.ok(r3 >= r2 + 2, `delete and destroyed: ${r3} >= ${r2} + 2`);
    });

    // Events recorded by the NDJSON test, replayed by the SSE, filter and WebSocket tests.
    const recorded = { since: null, events: [] };
    const EV = { bytes: Buffer.from('ev1'), name: 'ev1', href: 'ev1' };

    // Reads messages until `done(message)` is true, checking each against the spec.
    async function readUntil(stream, check, done, what) {
        for (;;) {
            let m;
            try {
                m = await stream.next();
            } catch (e) {
                throw new Error(`waiting for ${what}: ${e.message}`);
            }
            check(m);
            if (done(m))
                return m;
        }
    }

    test('the NDJSON event stream sends hello, a snapshot, then every change', async () => {
        const pointer = spec.schemaPointer('GET', '/api/v1/events', 200, 'application/x-ndjson');
        const stream = await openStream(`/api/v1/events?snapshot=true&${ALL_TYPES}`);
        try {
            assert.equal(stream.status, 200);
            assert.equal(stream.mediaType, 'application/x-ndjson');
            const check = (m) => spec.checkValue(pointer, m.json, 'NDJSON line');
            const hello = check(await stream.next());
            assert.equal(hello.type, 'hello');
            const snapshot = check(await stream.next());
            assert.equal(snapshot.type, 'snapshot');
            assert.equal(snapshot.revision, hello.revision);
            const listing = await list();
            if (listing.revision === snapshot.revision)
                assert.deepEqual(snapshot.namespaces, listing.namespaces);
            recorded.since = snapshot.revision;

            const events = [];
            const keep = (m) => {
                check(m);
                events.push(m.json);
            };
            ipNetns('add', EV.bytes);
            await readUntil(stream, keep, (m) => m.json.type === 'add', 'add');
            ipNetns('set', EV.bytes, '7');
            await readUntil(stream, keep, (m) => m.json.type === 'nsid', 'nsid');
            // Unmount and unlink, then the kernel frees it: `delete` and `destroyed`, in
            // either order.
            ipNetns('del', EV.bytes);
            const seen = new Set();
            await readUntil(stream, keep, (m) => seen.add(m.json.type).has('delete') &&
                            seen.has('destroyed'), 'delete and destroyed');

            assert.deepEqual(events.map((e) => e.revision),
                             events.map((_, i) => snapshot.revision + 1 + i),
                             'every event has the next revision');
            const add = events.find((e) => e.type === 'add');
            const nsid = events.find((e) => e.type === 'nsid');
            assert.deepEqual([add.name, add.nsid, add.namespace.href, add.namespace.state],
                             ['ev1', null, `${HREF_PREFIX}ev1`, 'live']);
            assert.deepEqual([nsid.name, nsid.nsid, nsid.namespace.nsid], ['ev1', 7, 7]);
            const del = events.find((e) => e.type === 'delete');
            assert.deepEqual([del.name, del.namespace.href], ['ev1', `${HREF_PREFIX}ev1`]);
            const destroyed = events.find((e) => e.type === 'destroyed');
            assert.deepEqual([destroyed.name, destroyed.nsid, destroyed.namespace],
                             [null, 7, null]);
            // The inventory knew it: found (by its mount) and holders, with its ns_id.
            const found = events.find((e) => e.type === 'found');
            assert.ok(found, 'a found event for the new namespace');
            assert.equal(found.ns_id, add.namespace.ns_id);
            assert.equal(destroyed.ns_id, add.namespace.ns_id);
            assert.ok(events.some((e) => e.type === 'holders' && e.ns_id === found.ns_id &&
                                  e.host.names.some((n) => n.name === 'ev1')),
                      'a holders event names ev1');
            recorded.events = events;
        } finally {
            stream.close();
        }
    });

    test('SSE replays from since= and resumes from Last-Event-ID', async () => {
        assert.ok(recorded.events.length >= 4, 'the NDJSON test recorded the events');
        const schema = '/components/schemas/StreamMessage';
        spec.schemaPointer('GET', '/api/v1/events', 200, 'text/event-stream'); // documented
        const check = (m) => {
            spec.checkValue(schema, m.json, 'SSE data');
            assert.equal(m.event, m.json.type, 'the SSE event is the message type');
            if (m.json.type === 'hello' || m.json.type === 'reset')
                assert.equal(m.id, undefined, `${m.json.type} has no id`);
            else
                assert.equal(m.id, String(m.json.revision), 'the SSE id is the revision');
            return m.json;
        };
        const variants = [
            [`/api/v1/events?since=${recorded.since}&${ALL_TYPES}`,
             { accept: 'text/event-stream' }, 0],
            [`/api/v1/events?format=sse&${ALL_TYPES}`,
             { 'last-event-id': String(recorded.since + 2) }, 2],
        ];
        for (const [path, headers, skip] of variants) {
            const stream = await openStream(path, headers);
            try {
                assert.equal(stream.status, 200, path);
                assert.equal(stream.mediaType, 'text/event-stream', path);
                assert.equal(check(await stream.next()).type, 'hello');
                for (const e of recorded.events.slice(skip))
                    assert.deepEqual(check(await stream.next()), e, path);
            } finally {
                stream.close();
            }
        }
    });

    test('the types and names filters pick events', async () => {
        const pointer = spec.schemaPointer('GET', '/api/v1/events', 200, 'application/x-ndjson');
        const cases = [
            ['types=nsid,destroyed', (e) => ['nsid', 'destroyed'].includes(e.type)],
            ['types=add', (e) => e.type === 'add'],
            ['names=ev%2A', (e) => e.name?.startsWith('ev')],
            ['names=e%3F1&types=delete', (e) => e.name === 'ev1' && e.type === 'delete'],
        ];
        for (const [query, wanted] of cases) {
            const path = `/api/v1/events?since=${recorded.since}&${query}`;
            const stream = await openStream(path);
            try {
                const next = async () =>
                    spec.checkValue(pointer, (await stream.next()).json, path);
                assert.equal((await next()).type, 'hello', path);
                for (const e of recorded.events.filter(wanted))
                    assert.deepEqual(await next(), e, path);
            } finally {
                stream.close();
            }
        }
    });

    test('a WebSocket upgrade gets 101, then one message per text frame', async () => {
        const schema = '/components/schemas/StreamMessage';
        spec.operation('GET', '/api/v1/events').responses['101'] ??
            assert.fail('101 is not documented for GET /api/v1/events');
        const check = async (ws) => spec.checkValue(schema, (await ws.next()).json, 'ws');
        let ws = await openWebSocket('/api/v1/events?snapshot=true');
        try {
            assert.equal(ws.status, 101);
            assert.ok(ws.acceptOk, 'Sec-WebSocket-Accept matches the key');
            const hello = await check(ws);
            assert.equal(hello.type, 'hello');
            const snapshot = await check(ws);
            assert.deepEqual([snapshot.type, snapshot.revision], ['snapshot', hello.revision]);
        } finally {
            ws.close();
        }
        ws = await openWebSocket(`/api/v1/events?since=${recorded.since}&${ALL_TYPES}`);
        try {
            assert.equal((await check(ws)).type, 'hello');
            for (const e of recorded.events)
                assert.deepEqual(await check(ws), e);
        } finally {
            ws.close();
        }
    });

    test('a since the journal cannot serve gets hello, reset, then a snapshot', async () => {
        const pointer = spec.schemaPointer('GET', '/api/v1/events', 200, 'application/x-ndjson');
        const current = (await getChecked('/healthz', '/healthz', 200)).body.revision;
        const sinces = {
            0: 'zero',
            [firstRun.look.base - 1]: 'the last revision before this run',
            [current + 1]: 'one ahead of the current revision',
            [current + 1000]: 'far ahead of the current revision',
        };
        for (const [since, why] of Object.entries(sinces)) {
            const path = `/api/v1/events?since=${since}`;
            const stream = await openStream(path);
            try {
                assert.equal(stream.status, 200, path);
                const next = async () =>
                    spec.checkValue(pointer, (await stream.next()).json, path);
                await readReset(next, `${path} (${why})`);
            } finally {
                stream.close();
            }
        }

        // Server-Sent Events resuming with Last-Event-ID: the reset has no id, the snapshot
        // has its revision.
        const sse = await openStream('/api/v1/events?format=sse', { 'last-event-id': '0' });
        try {
            assert.equal(sse.mediaType, 'text/event-stream');
            const ids = [];
            const next = async () => {
                const m = await sse.next();
                spec.checkValue('/components/schemas/StreamMessage', m.json, 'SSE data');
                assert.equal(m.event, m.json.type, 'the SSE event is the message type');
                ids.push(m.id);
                return m.json;
            };
            const snapshot = await readReset(next, 'SSE with Last-Event-ID: 0');
            assert.deepEqual(ids, [undefined, undefined, String(snapshot.revision)]);
        } finally {
            sse.close();
        }

        const ws = await openWebSocket('/api/v1/events?since=0');
        try {
            assert.equal(ws.status, 101);
            const next = async () => spec.checkValue('/components/schemas/StreamMessage',
                                                     (await ws.next()).json, 'ws');
            await readReset(next, 'WebSocket with since=0');
        } finally {
            ws.close();
        }
    });

    test('a since the journal covers replays from there, down to the start revision',
         async () => {
        const pointer = spec.schemaPointer('GET', '/api/v1/events', 200, 'application/x-ndjson');
        // The start revision itself: the first event is the first scan's add of alpha.
        let path = `/api/v1/events?since=${firstRun.look.base}`;
        let stream = await openStream(path);
        try {
            const next = async () => spec.checkValue(pointer, (await stream.next()).json, path);
            assert.equal((await next()).type, 'hello', path);
            // The first entry event (the inventory's found events, not asked for, may come
            // before it in the revision sequence).
            const first = await next();
            assert.deepEqual([first.type, first.name], ['add', 'alpha'], path);
            assert.ok(first.revision > firstRun.look.base, path);
        } finally {
            stream.close();
        }
        // The current revision: nothing to replay, then the next change as it happens.
        const current = (await getChecked('/healthz', '/healthz', 200)).body.revision;
        path = `/api/v1/events?since=${current}&names=resume`;
        stream = await openStream(path);
        const name = Buffer.from('resume');
        let added = false;
        try {
            const next = async () => spec.checkValue(pointer, (await stream.next()).json, path);
            const hello = await next();
            assert.deepEqual([hello.type, hello.revision], ['hello', current], path);
            ipNetns('add', name);
            added = true;
            const add = await next();
            assert.deepEqual([add.type, add.name], ['add', 'resume'],
                             `${path}: no reset, the next event`);
            assert.ok(add.revision > current, path);
        } finally {
            stream.close();
            if (added)
                ipNetns('del', name);
        }
    });

    test('invalid stream parameters are 400 bad-request', async () => {
        const queries = ['since=abc', 'since=-1', 'since=', 'snapshot=yes', 'types=add,bogus',
                         'types=', 'names=', 'format=xml', 'verbose=1', 'since=1&snapshot=true',
                         'since=%zz'];
        for (const q of queries) {
            const { body } = await getChecked('/api/v1/events', `/api/v1/events?${q}`, 400);
            assert.equal(body.type, 'urn:netnsd:problem:bad-request', q);
        }
        const res = await request('GET', '/api/v1/events',
                                  { headers: { accept: 'text/event-stream',
                                               'last-event-id': 'yesterday' } });
        const body = spec.checkResponse('GET', '/api/v1/events', res, 'bad Last-Event-ID');
        assert.equal(res.status, 400);
        assert.equal(body.type, 'urn:netnsd:problem:bad-request');
        const ws = await openWebSocket('/api/v1/events?types=bogus');
        assert.equal(ws.status, 400, 'a WebSocket upgrade with a bad parameter');
        spec.checkResponse('GET', '/api/v1/events', ws, 'WebSocket with a bad parameter');
    });

    test('stream clients beyond --max-stream-clients get 503 too-many-streams', async () => {
        // Opens streams until one is refused; returns how many were accepted.
        const fill = async () => {
            const open = [];
            try {
                for (let i = 0; i <= MAX_STREAMS; ++i) {
                    const s = await openStream('/api/v1/events');
                    if (s.res) {
                        const body = spec.checkResponse('GET', '/api/v1/events', s.res,
                                                        `stream ${i + 1}`);
                        assert.equal(s.res.status, 503);
                        assert.equal(body.type, 'urn:netnsd:problem:too-many-streams');
                        return open.length;
                    }
                    open.push(s);
                }
                return open.length;
            } finally {
                for (const s of open)
                    s.close();
            }
        };
        // Streams of earlier tests may take a moment to be noticed as closed.
        const accepted = await waitFor('every stream slot to be free', async () => {
            const n = await fill();
            if (n < MAX_STREAMS)
                throw new NotYet(`${n} streams accepted`);
            return n;
        });
        assert.equal(accepted, MAX_STREAMS, `exactly ${MAX_STREAMS} streams at once`);
    });

    test('links of an entry and of a namespace by ns_id, and the topology, are as the spec '
         + 'describes them', async () => {
        // blue (nsid 5) gets a veth to the daemon's namespace, in a bridge, with an address.
        sh('ip link add ctr-h type veth peer name ctr-p netns blue');
        sh('ip -n blue link add ctr-br type bridge && ip -n blue link set ctr-p master ctr-br');
        sh('ip -n blue addr add 10.77.0.2/24 dev ctr-p && ip -n blue link set ctr-p up');
        const { body } = await getChecked('/api/v1/netns/{name}/links',
                                          '/api/v1/netns/blue/links', 200);
        assert.equal(body.read_by, 'nsid');
        assert.equal(body.nsid, 5);
        const p = body.links.find((l) => l.name === 'ctr-p');
        assert.ok(p, 'ctr-p is listed');
        assert.equal(p.kind, 'veth');
        assert.equal(p.master.name, 'ctr-br');
        assert.equal(p.peer.ifname, 'ctr-h');
        assert.deepEqual(p.addresses.map((a) => `${a.address}/${a.prefixlen}`)
            .filter((a) => a.startsWith('10.')), ['10.77.0.2/24']);
        const hosts = await getChecked('/api/v1/namespaces', '/api/v1/namespaces', 200);
        const self = hosts.body.namespaces.find((n) => n.is_self);
        const own = await getChecked('/api/v1/namespaces/{ns_id}/links',
                                     `${self.href}/links`, 200);
        assert.equal(own.body.links.find((l) => l.name === 'ctr-h').peer.netns, 'azure',
                     'the peer\'s namespace by its first name');
        const topo = await getChecked('/api/v1/topology', '/api/v1/topology', 200);
        assert.ok(topo.body.edges.some((e) => e.type === 'veth'
            && e.ends.some((x) => x.ifname === 'ctr-h') && e.ends.some((x) => x.ifname === 'ctr-p')));
        assert.ok(topo.body.edges.some((e) => e.type === 'bridge_port' && e.port.ifname === 'ctr-p'));
        await getChecked('/api/v1/netns/{name}/links', '/api/v1/netns/nope/links', 404);
        await getChecked('/api/v1/netns/{name}/links', '/api/v1/netns/stale/links', 409);
        await getChecked('/api/v1/namespaces/{ns_id}/links', '/api/v1/namespaces/999999999999/links',
                         404);
        await getChecked('/api/v1/namespaces/{ns_id}/links', '/api/v1/namespaces/x/links', 400);
        sh('ip link del ctr-h');
    });

    test('SIGTERM ends the streams cleanly and the daemon exits with status 0', async () => {
        // Wait until the last change has been seen, so this is the run's last revision.
        firstRun.last = await waitFor('resume to be deleted', async () => {
            const listing = await list();
            return byHref(listing).has(`${HREF_PREFIX}resume`) ? undefined : listing.revision;
        });
        const stream = await openStream('/api/v1/events');
        const ws = await openWebSocket('/api/v1/events');
        assert.equal((await stream.next()).json.type, 'hello');
        assert.equal((await ws.next()).json.type, 'hello');
        const exited = once(daemon, 'exit');
        daemon.kill('SIGTERM');
        const timer = setTimeout(() => daemon.kill('SIGKILL'), STOP_TIMEOUT_MS);
        const [code, signal] = await exited;
        clearTimeout(timer);
        assert.deepEqual({ code, signal }, { code: 0, signal: null }, output());
        assert.equal(await stream.whenEnded(), 'cleanly', 'the NDJSON stream got its last chunk');
        assert.equal(await ws.whenEnded(), 1001, 'the WebSocket was closed with 1001');
    });
});

describe('a restarted daemon', () => {
    let restartedAt;
    let look;

    before(async () => {
        assert.ok(firstRun.last !== null, 'the first run ended');
        restartedAt = Date.now();
        await startDaemon(['--journal-size', String(SMALL_JOURNAL)]);
        look = await firstLook();
    });

    after(killDaemon);

    test('its revisions start at its own start time, above the first run\'s', () => {
        assertStartRevision(look, restartedAt);
        assert.ok(look.base > firstRun.last,
                  `the start revision ${look.base} is above the first run's last, ` +
                  `${firstRun.last}`);
    });

    test('a since from the first run gets hello, reset, then a snapshot', async () => {
        const pointer = spec.schemaPointer('GET', '/api/v1/events', 200, 'application/x-ndjson');
        for (const since of [firstRun.last, firstRun.look.revision]) {
            const path = `/api/v1/events?since=${since}`;
            const stream = await openStream(path);
            try {
                const next = async () =>
                    spec.checkValue(pointer, (await stream.next()).json, path);
                const snapshot = await readReset(next, path);
                assert.equal(snapshot.revision, look.revision, path);
            } finally {
                stream.close();
            }
        }
    });

    test('a since older than the journal\'s oldest event gets a reset', async () => {
        // The first scan recorded more events than the journal keeps: it holds the last
        // SMALL_JOURNAL, so it covers since = revision - SMALL_JOURNAL and no older.
        assert.ok(look.events > SMALL_JOURNAL + 1,
                  `the first scan recorded ${look.events} events, more than ${SMALL_JOURNAL} + 1`);
        const pointer = spec.schemaPointer('GET', '/api/v1/events', 200, 'application/x-ndjson');
        const oldest = look.revision - SMALL_JOURNAL;
        let path = `/api/v1/events?since=${oldest}&${ALL_TYPES}`;
        let stream = await openStream(path);
        try {
            const next = async () => spec.checkValue(pointer, (await stream.next()).json, path);
            assert.equal((await next()).type, 'hello', path);
            for (let r = oldest + 1; r <= look.revision; ++r) {
                const e = await next();
                assert.equal(e.revision, r, path);
                assert.ok(['add', 'nsid', 'found', 'holders'].includes(e.type),
                          `${path}: a first-scan event`);
            }
        } finally {
            stream.close();
        }
        // Still from this run (not below the start revision), but dropped from the journal.
        path = `/api/v1/events?since=${oldest - 1}`;
        assert.ok(oldest - 1 >= look.base, 'the since is from this run');
        stream = await openStream(path);
        try {
            const next = async () => spec.checkValue(pointer, (await stream.next()).json, path);
            await readReset(next, path);
        } finally {
            stream.close();
        }
    });
});

// --- the admin API -------------------------------------------------------------------------

const NETNS = '/api/v1/netns';
const ENTRY = '/api/v1/netns/{name}';
const NSID = '/api/v1/netns/{name}/nsid';
const PIDS = '/api/v1/netns/{name}/pids';
const EXEC = '/api/v1/netns/{name}/exec';
const IDENTIFY = '/api/v1/processes/{pid}/netns';
// What exec's etc-box sees as /etc/hosts (from ETC_NETNS_DIR/etc-box/hosts).
const BOX_HOSTS = '192.0.2.1 netnsd-contract-host\n';
// An ETC_NETNS_DIR/etc-box entry without an /etc target: exec warns about it.
const ETC_ABSENT = 'netnsd-contract-absent';

// Sends a request and checks the answer against the spec's operation for `template`.
// body: an object (sent as JSON) or a string (sent as it is), with Content-Type
// application/json unless `headers` says otherwise (null: no Content-Type at all).
// auth: true for the admin token, false for no Authorization, or a string to send as it is.
async function call(method, template, path, { body, auth = true, headers = {}, status } = {}) {
    const sent = {};
    if (auth === true)
        sent.authorization = `Bearer ${token}`;
    else if (typeof auth === 'string')
        sent.authorization = auth;
    let payload;
    if (body !== undefined) {
        payload = typeof body === 'string' ? body : JSON.stringify(body);
        sent['content-type'] = 'application/json';
    }
    for (const [name, value] of Object.entries(headers)) {
        if (value === null)
            delete sent[name.toLowerCase()];
        else
            sent[name.toLowerCase()] = value;
    }
    const res = await request(method, path, { headers: sent, body: payload });
    const where = `${method} ${path}${payload === undefined ? '' : ` ${payload.slice(0, 100)}`}` +
        (auth === true ? '' : ` (Authorization: ${auth === false ? 'none' : auth})`);
    const parsed = spec.checkResponse(method, template, res, where);
    if (status !== undefined)
        assert.equal(res.status, status, `${where}: ${res.text}`);
    // The request schemas describe what the daemon takes: a body it took validates.
    const accepted = payload === undefined ? undefined
        : spec.requestAccepted(method, template, payload);
    if (res.status < 300 && accepted !== undefined)
        assert.ok(accepted, `${where}: the daemon took a body the spec's schema rejects`);
    return { res, body: parsed, where, accepted };
}

// A request that must be refused with this status and problem slug; returns the problem.
async function refused(method, template, path, status, slug, options = {}) {
    const { res, body, where, accepted } = await call(method, template, path,
                                                      { ...options, status });
    if (slug === 'invalid-body' && !options.schemaCannotTell)
        assert.notEqual(accepted, true, `${where}: the spec's schema accepts a body the daemon ` +
                        'refuses');
    assert.equal(res.mediaType, 'application/problem+json', where);
    assert.equal(body.type, `urn:netnsd:problem:${slug}`, `${where}: ${res.text}`);
    assert.equal(body.status, status, where);
    return body;
}

async function create(name, extra = {}) {
    const { res, body } = await call('POST', NETNS, NETNS, { body: { name, ...extra },
                                                            status: 201 });
    return { location: res.headers.location, entry: body };
}

async function exec(name, body) {
    return (await call('POST', EXEC, `${HREF_PREFIX}${name}/exec`, { body, status: 200 })).body;
}

async function pidsOf(name) {
    return (await call('GET', PIDS, `${HREF_PREFIX}${name}/pids`, { status: 200 })).body.pids;
}

// The namespace of a process as the model has it: a process the last /proc sweep did not see
// is 404 until the next sweep, which `until` (a check of the answer) waits for too.
async function identify(pid, until = () => true) {
    return waitFor(`GET /api/v1/processes/${pid}/netns`, async () => {
        const { res, body } = await call('GET', IDENTIFY, `/api/v1/processes/${pid}/netns`);
        if (res.status === 404)
            throw new NotYet('not in the model yet');
        assert.equal(res.status, 200, res.text);
        if (!until(body))
            throw new NotYet(`not yet: ${JSON.stringify(body).slice(0, 200)}`);
        return body;
    });
}

// The names `ip netns list` shows.
function ipList() {
    return new Set(sh('ip netns list').toString('utf8').split('\n').filter(Boolean)
        .map((line) => line.replace(/ \(id: \d+\)$/, '')));
}

// nsid -> name, as `ip netns list-id` shows them.
function ipListId() {
    return new Map(sh('ip netns list-id').toString('utf8').split('\n').filter(Boolean)
        .map((line) => /^nsid (\d+) (?:\(iproute2 netns name: (.*)\))?/.exec(line))
        .map((m) => [Number(m[1]), m[2] ?? null]));
}

function mounted(path) {
    return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
        .some((line) => line.split(' ')[4] === path);
}

// The entry's file, from its href (the exact bytes of its name).
function entryFile(entry) {
    return Buffer.concat([Buffer.from(`${NETNS_DIR}/`), hrefBytes(entry.href)]);
}

describe('the admin API', () => {
    const children = [];
    // A process that stays until the end of this run of the daemon.
    const keep = (command, ...args) => {
        const child = spawn(command, args, { stdio: 'ignore' });
        children.push(child);
        return child;
    };

    before(async () => {
        assertSandboxed();
        mkdirSync(`${ETC_NETNS_DIR}/etc-box`, { recursive: true });
        writeFileSync(`${ETC_NETNS_DIR}/etc-box/hosts`, BOX_HOSTS);
        writeFileSync(`${ETC_NETNS_DIR}/etc-box/${ETC_ABSENT}`, 'no /etc target\n');
        await startDaemon(['--enable-exec', '--max-exec', '1',
                           '--exec-output-limit', String(EXEC_OUTPUT_LIMIT),
                           '--etc-netns-dir', ETC_NETNS_DIR]);
    });

    after(async () => {
        for (const child of children)
            child.kill('SIGKILL');
        await killDaemon();
    });

    test('the token file is 0600 with 64 hex digits, and is never logged', () => {
        assert.equal(statSync(TOKEN_FILE).mode & 0o777, 0o600);
        assert.match(token, /^[0-9a-f]{64}$/);
        // Created by the first run of the daemon, read back by the later ones.
        assert.ok(daemonOutput.includes(`read the admin tokens: token_file=${TOKEN_FILE}`) ||
                  daemonOutput.includes(`created the admin token: token_file=${TOKEN_FILE}`),
                  output());
        assert.ok(!daemonOutput.includes(token), 'the token is not in the log');
    });

    test('writes without the right token are 401 with WWW-Authenticate, and change nothing',
         async () => {
        const before = await list();
        const wrong = [false, 'Bearer wrong', `Basic ${token}`, 'Bearer', `Bearer ${token}0`,
                       `Bearer ${token.slice(1)}`, token];
        for (const auth of wrong) {
            const { res } = await call('POST', NETNS, NETNS, { auth, body: { name: 'sneaky' },
                                                               status: 401 });
            assert.equal(res.headers['www-authenticate'], 'Bearer realm="netnsd"');
        }
        const writes = [
            ['DELETE', ENTRY, `${HREF_PREFIX}alpha`],
            ['DELETE', NETNS, `${NETNS}?all=true`],
            ['PUT', NSID, `${HREF_PREFIX}alpha/nsid`, { nsid: 1 }],
            ['POST', EXEC, `${HREF_PREFIX}alpha/exec`, { argv: ['true'] }],
            // The token is checked before the input: nothing is told about the entries.
            ['DELETE', ENTRY, `${HREF_PREFIX}nope`],
            ['POST', EXEC, `${HREF_PREFIX}nope/exec`, 'not json'],
        ];
        for (const [method, template, path, body] of writes) {
            for (const auth of [false, 'Bearer wrong'])
                await refused(method, template, path, 401, 'unauthorized', { auth, body });
        }
        assert.deepEqual(await list(), before, 'nothing changed');
        assert.ok(!ipList().has('sneaky'));
        // Without --auth-reads the reads stay open.
        await call('GET', PIDS, `${HREF_PREFIX}alpha/pids`, { auth: false, status: 200 });
        await call('GET', IDENTIFY, `/api/v1/processes/${process.pid}/netns`,
                   { auth: false, status: 200 });
    });

    test('POST creates a namespace: 201 with Location, live in the model at once', async () => {
        const { location, entry } = await create('made');
        assert.equal(location, `${HREF_PREFIX}made`);
        assert.deepEqual([entry.href, entry.state, entry.nsid], [location, 'live', null]);
        // The answer came once the model had it: a GET right after finds the same entry.
        const { body } = await getChecked(ENTRY, location, 200);
        assert.deepEqual(body, entry);
        assert.ok(ipList().has('made'), 'ip netns list shows it');
        sh('ip netns exec made true');

        // A UTF-8 name, an nsid, and the scheme in lower case with spaces around the token.
        const r = await call('POST', NETNS, NETNS, { auth: `bearer   ${token}  `,
                                                     body: { name: 'with ünï', nsid: 100 },
                                                     status: 201 });
        assert.equal(r.res.headers.location, `${HREF_PREFIX}with%20%C3%BCn%C3%AF`);
        assert.equal(r.body.nsid, 100);
        assert.equal(ipListId().get(100), 'with ünï');
        // The body is JSON whatever the Content-Type claims among these: a parameter, a +json
        // type, none at all, and curl -d's default.
        const types = {
            charset: 'application/json; charset=utf-8',
            'plus-json': 'application/vnd.example+json',
            untyped: null,
            'curl-d': 'application/x-www-form-urlencoded',
        };
        for (const [name, type] of Object.entries(types)) {
            await call('POST', NETNS, NETNS, { body: { name }, status: 201,
                                               headers: { 'content-type': type } });
        }
    });

    test('a create that fails is 409 and leaves nothing behind', async () => {
        for (const name of ['made', 'stale', 'adir'])
            await refused('POST', NETNS, NETNS, 409, 'already-exists', { body: { name } });
        const before = await list();
        // The namespace is made, the nsid cannot be set: the create is undone.
        await refused('POST', NETNS, NETNS, 409, 'nsid-in-use',
                      { body: { name: 'second', nsid: 100 } });
        await getChecked(ENTRY, `${HREF_PREFIX}second`, 404);
        assert.ok(!ipList().has('second'), 'no file');
        assert.ok(!mounted(`${NETNS_DIR}/second`), 'no mount');
        assert.deepEqual((await list()).namespaces, before.namespaces);
    });

    test('bad create input is 400, 404, 415 or 413, and creates nothing', async () => {
        const before = await list();
        const cases = [
            ['not json', 'invalid-body'],
            ['', 'invalid-body'],
            ['[1,2]', 'invalid-body'],
            ['"x"', 'invalid-body'],
            [{}, 'invalid-body'],
            [{ name: 5 }, 'invalid-body'],
            [{ name: 'x', colour: 'red' }, 'invalid-body'],
            [{ name: 'x', nsid: -1 }, 'invalid-body'],
            [{ name: 'x', nsid: 2147483648 }, 'invalid-body'],
            [{ name: 'x', nsid: 1.5 }, 'invalid-body'],
            [{ name: 'x', nsid: '7' }, 'invalid-body'],
            [{ name: 'x', nsid: null }, 'invalid-body'],
            [{ name: 'x', pid: 0 }, 'invalid-body'],
            [{ name: 'x', pid: -5 }, 'invalid-body'],
            [{ name: 'x', pid: 2147483648 }, 'invalid-body'],
            [{ name: 'x', pid: String(process.pid) }, 'invalid-body'],
            [{ name: '' }, 'invalid-name'],
            [{ name: '.' }, 'invalid-name'],
            [{ name: '..' }, 'invalid-name'],
            [{ name: 'a/b' }, 'invalid-name'],
            [{ name: 'a\u0000b' }, 'invalid-name'],
            [{ name: 'n'.repeat(256) }, 'invalid-name'],
        ];
        for (const [body, slug] of cases)
            await refused('POST', NETNS, NETNS, 400, slug, { body });
        await refused('POST', NETNS, NETNS, 404, 'no-such-process',
                      { body: { name: 'x', pid: 999999999 } });
        for (const type of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x'])
            await refused('POST', NETNS, NETNS, 415, 'unsupported-media-type',
                          { body: { name: 'x' }, headers: { 'content-type': type } });
        // The daemon answers as soon as it reads Content-Length; the body need not be sent.
        const res = await rawRequest(`POST ${NETNS} HTTP/1.1\r\nHost: ${HOST}\r\n` +
                                     `Authorization: Bearer ${token}\r\n` +
                                     'Content-Type: application/json\r\n' +
                                     `Content-Length: ${64 * 1024 + 1}\r\n\r\n`);
        const body = spec.checkResponse('POST', NETNS, res, 'POST with 64 KiB + 1');
        assert.equal(res.status, 413);
        assert.equal(body.type, 'urn:netnsd:problem:payload-too-large');
        assert.deepEqual((await list()).namespaces, before.namespaces);
        assert.ok(!ipList().has('x'));
    });

    test('attach names the namespace of a process; identify and pids find it', async () => {
        const sleeper = keep('unshare', '-n', 'sleep', '120');
        const ours = readlinkSync('/proc/self/ns/net');
        await waitFor('the sleeper to be in a namespace of its own', () => {
            let theirs;
            try {
                theirs = readlinkSync(`/proc/${sleeper.pid}/ns/net`);
            } catch (e) {
                throw new NotYet(e.message);
            }
            if (theirs === ours)
                throw new NotYet('still in ours');
            return true;
        });
        const { entry } = await create('attached', { pid: sleeper.pid });
        assert.equal(entry.inode, statSync(`/proc/${sleeper.pid}/ns/net`).ino);
        // The same object as the namespace's own route, from the model's last sweep.
        const held = await identify(sleeper.pid);
        assert.deepEqual([held.ns_id, held.inode, held.nsid, held.names, held.is_self],
                         [entry.ns_id, entry.inode, null,
                          [{ name: 'attached', href: `${HREF_PREFIX}attached` }], false]);
        assert.deepEqual(held.held_by, ['name', 'mount', 'process']);
        assert.deepEqual(
            (await getChecked('/api/v1/namespaces/{ns_id}', held.href, 200)).body, held);
        assert.deepEqual(await pidsOf('attached'), [sleeper.pid]);

        // A second name for it, with the lowest free nsid.
        const second = await create('attached2', { pid: sleeper.pid, nsid: 'auto' });
        assert.equal(second.entry.inode, entry.inode);
        assert.ok(Number.isInteger(second.entry.nsid), 'auto gave an nsid');
        const twice = await identify(sleeper.pid, (h) => h.names.length === 2);
        assert.deepEqual([twice.ns_id, twice.nsid, twice.names.map((n) => n.name)],
                         [entry.ns_id, second.entry.nsid, ['attached', 'attached2']]);
        // Its namespace has an nsid now, for life: asking for another undoes the attach.
        await refused('POST', NETNS, NETNS, 409, 'nsid-assigned',
                      { body: { name: 'attached3', pid: sleeper.pid, nsid: 101 } });
        await getChecked(ENTRY, `${HREF_PREFIX}attached3`, 404);
        assert.ok(!ipList().has('attached3'));
    });

    test('identify: our own process, a missing pid, and pids that are not whole numbers',
         async () => {
        const self = await identify(process.pid);
        assert.equal(self.inode, statSync('/proc/self/ns/net').ino);
        assert.equal(self.is_self, true, 'the daemon runs in this test\'s namespace');
        assert.deepEqual(self.names, [], 'no entry names the sandbox\'s namespace');
        await refused('GET', IDENTIFY, '/api/v1/processes/999999999/netns', 404,
                      'no-such-process');
        for (const pid of ['0', '-1', 'abc', '1.5', '+1', '%31', '2147483648'])
            await refused('GET', IDENTIFY, `/api/v1/processes/${pid}/netns`, 400, 'bad-request');
    });

    test('PUT nsid: 200 with the nsid, 409 nsid-assigned vs nsid-in-use', async () => {
        await create('n1');
        const { body: n1 } = await call('PUT', NSID, `${HREF_PREFIX}n1/nsid`,
                                        { body: { nsid: 'auto' }, status: 200 });
        assert.ok(Number.isInteger(n1.nsid), 'auto gave an nsid');
        assert.deepEqual((await getChecked(ENTRY, `${HREF_PREFIX}n1`, 200)).body, n1);
        assert.equal(ipListId().get(n1.nsid), 'n1');
        // An nsid is for life: the same, another, or auto.
        for (const nsid of [n1.nsid, 102, 'auto'])
            await refused('PUT', NSID, `${HREF_PREFIX}n1/nsid`, 409, 'nsid-assigned',
                          { body: { nsid } });
        await create('n2');
        await refused('PUT', NSID, `${HREF_PREFIX}n2/nsid`, 409, 'nsid-in-use',
                      { body: { nsid: 100 } });
        const { body: n2 } = await call('PUT', NSID, `${HREF_PREFIX}n2/nsid`,
                                        { body: { nsid: 103 }, status: 200 });
        assert.equal(n2.nsid, 103);
        assert.equal(ipListId().get(103), 'n2');

        await refused('PUT', NSID, `${HREF_PREFIX}stale/nsid`, 409, 'not-a-namespace',
                      { body: { nsid: 104 } });
        await refused('PUT', NSID, `${HREF_PREFIX}nope/nsid`, 404, 'not-found',
                      { body: { nsid: 104 } });
        await refused('PUT', NSID, `${HREF_PREFIX}%2E%2E/nsid`, 400, 'invalid-name',
                      { body: { nsid: 104 } });
        const bad = ['', 'nope', '[]', {}, { nsid: -1 }, { nsid: 2147483648 }, { nsid: 'many' },
                     { nsid: 1.5 }, { nsid: null }, { nsid: 104, name: 'n2' }];
        for (const body of bad)
            await refused('PUT', NSID, `${HREF_PREFIX}n2/nsid`, 400, 'invalid-body', { body });
        await refused('PUT', NSID, `${HREF_PREFIX}n2/nsid`, 415, 'unsupported-media-type',
                      { body: { nsid: 104 }, headers: { 'content-type': 'text/plain' } });
        assert.equal(ipListId().get(104), undefined, 'no nsid 104 was given');
    });

    test('pids: 200 with the pids, 404, 409 for a stale entry', async () => {
        assert.deepEqual(await pidsOf('made'), []);
        await refused('GET', PIDS, `${HREF_PREFIX}nope/pids`, 404, 'not-found');
        await refused('GET', PIDS, `${HREF_PREFIX}stale/pids`, 409, 'not-a-namespace');
        await refused('GET', PIDS, `${HREF_PREFIX}%2E%2E/pids`, 400, 'invalid-name');
    });

    test('exec of true and of sh -c \'echo hi\'', async () => {
        await create('box');
        const quiet = await exec('box', { argv: ['true'] });
        assert.ok(quiet.duration_ms >= 0);
        assert.deepEqual({ ...quiet, duration_ms: 0 },
                         { exit_code: 0, signal: null, stdout: '', stderr: '',
                           stdout_truncated: false, stderr_truncated: false, timed_out: false,
                           duration_ms: 0, warnings: [] });
        const hi = await exec('box', { argv: ['sh', '-c', 'echo hi'] });
        assert.deepEqual([hi.exit_code, hi.stdout, hi.stderr], [0, 'hi\n', '']);
    });

    test('exec runs in the namespace, with its own mounts, /sys, /etc/netns and environment',
         async () => {
        const { body: box } = await getChecked(ENTRY, `${HREF_PREFIX}box`, 200);
        assert.equal((await exec('box', { argv: ['readlink', '/proc/self/ns/net'] })).stdout,
                     `net:[${box.inode}]\n`);
        // A fresh /sys: the namespace's links, only lo.
        assert.equal((await exec('box', { argv: ['ls', '/sys/class/net'] })).stdout, 'lo\n');
        // The minimal environment, plus env.
        const env = await exec('box', { argv: ['env'], env: { FOO: 'bar baz' } });
        assert.equal(env.stdout, `PATH=${DEFAULT_PATH}\nFOO=bar baz\n`);
        // env's PATH is the one argv[0] is looked up in.
        await exec('box', { argv: ['true'], env: { PATH: '/usr/bin:/bin' } });
        // A mount namespace of its own, a slave of ours: what it mounts does not reach us.
        const mount = await exec('box', { argv: ['sh', '-c', 'mount -t tmpfs netnsd-exec-tmp ' +
                                                 `${RUN_DIR} && grep -c netnsd-exec-tmp ` +
                                                 '/proc/self/mountinfo'] });
        assert.deepEqual([mount.exit_code, mount.stdout], [0, '1\n'], mount.stderr);
        assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes('netnsd-exec-tmp'));
        assert.ok(statSync(TOKEN_FILE).isFile());
        // ETC_NETNS_DIR/NAME/hosts is bound over /etc/hosts for it, not for us; an entry
        // without an /etc target is skipped with a warning.
        await create('etc-box');
        const hosts = await exec('etc-box', { argv: ['cat', '/etc/hosts'] });
        assert.equal(hosts.stdout, BOX_HOSTS);
        assert.equal(hosts.warnings.length, 1, hosts.warnings.join('\n'));
        assert.ok(hosts.warnings[0].includes(ETC_ABSENT), hosts.warnings[0]);
        assert.notEqual(readFileSync('/etc/hosts', 'utf8'), BOX_HOSTS);
    });

    test('exec reports exit codes, signals and output; stdin, base64, the output cap',
         async () => {
        const code = await exec('box', { argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
        assert.deepEqual([code.exit_code, code.signal, code.stdout, code.stderr, code.timed_out],
                         [3, null, 'out\n', 'err\n', false]);
        const signalled = await exec('box', { argv: ['sh', '-c', 'kill -TERM $$'] });
        assert.deepEqual([signalled.exit_code, signalled.signal, signalled.timed_out],
                         [null, 15, false]);
        assert.equal((await exec('box', { argv: ['cat'], stdin: 'héllo\n' })).stdout, 'héllo\n');
        assert.equal((await exec('box', { argv: ['cat'], stdin: 'hello', output: 'base64' }))
            .stdout, 'aGVsbG8=');
        // Bytes that are not UTF-8: U+FFFD as text, exact in base64.
        assert.equal((await exec('box', { argv: ['printf', '\\377'] })).stdout, '\uFFFD');
        assert.equal((await exec('box', { argv: ['printf', '\\377'], output: 'base64' })).stdout,
                     '/w==');
        // Each stream is capped at --exec-output-limit bytes; the rest is dropped.
        const seq = await exec('box', { argv: ['seq', '1', '2000'] });
        const all = Array.from({ length: 2000 }, (_, i) => `${i + 1}\n`).join('');
        assert.deepEqual([seq.exit_code, seq.stdout, seq.stdout_truncated, seq.stderr_truncated],
                         [0, all.slice(0, EXEC_OUTPUT_LIMIT), true, false]);
        const both = await exec('box', { argv: ['sh', '-c', 'head -c 3000 /dev/zero; ' +
                                                'head -c 3000 /dev/zero >&2'], output: 'base64' });
        assert.ok(Buffer.from(both.stdout, 'base64').equals(Buffer.alloc(EXEC_OUTPUT_LIMIT)));
        assert.ok(Buffer.from(both.stderr, 'base64').equals(Buffer.alloc(EXEC_OUTPUT_LIMIT)));
        assert.deepEqual([both.stdout_truncated, both.stderr_truncated], [true, true]);
    });

    test('a timeout kills the command\'s process group; beyond --max-exec it is 429',
         async () => {
        const started = Date.now();
        // Two processes in one group: the shell's background sleep and the shell itself.
        const slow = exec('box', { argv: ['sh', '-c', 'sleep 60 & exec sleep 61'],
                                   timeout_ms: 1500 });
        try {
            await waitFor('both sleeps to run in box', async () => {
                const pids = await pidsOf('box');
                if (pids.length < 2)
                    throw new NotYet(`pids: ${pids}`);
                return true;
            });
            // The daemon runs with --max-exec 1, and the slot is taken.
            await refused('POST', EXEC, `${HREF_PREFIX}box/exec`, 429, 'too-many-execs',
                          { body: { argv: ['true'] } });
        } finally {
            const r = await slow;
            assert.deepEqual([r.timed_out, r.exit_code, r.signal], [true, null, 9]);
            assert.ok(r.duration_ms >= 1400 && r.duration_ms < 5000, `${r.duration_ms} ms`);
        }
        assert.ok(Date.now() - started < 5000, 'the answer came at the timeout');
        await waitFor('the whole group to be gone', async () => {
            const pids = await pidsOf('box');
            if (pids.length)
                throw new NotYet(`pids: ${pids}`);
            return true;
        });
        assert.equal((await exec('box', { argv: ['true'] })).exit_code, 0, 'the slot is free');
    });

    test('bad exec input is 400, 404, 409, 415', async () => {
        const bad = [
            'not json', {}, { argv: [] }, { argv: 'true' }, { argv: ['ls', 1] }, { argv: [null] },
            { argv: ['true'], timeout_ms: 0 }, { argv: ['true'], timeout_ms: 300001 },
            { argv: ['true'], timeout_ms: 1.5 }, { argv: ['true'], timeout_ms: '5' },
            { argv: ['true'], env: { A: 1 } }, { argv: ['true'], env: { 'A=B': 'x' } },
            { argv: ['true'], env: { '': 'x' } }, { argv: ['true'], env: ['A=1'] },
            { argv: ['true'], output: 'hex' }, { argv: ['true'], stdin: 5 },
            { argv: ['true'], shell: true },
        ];
        for (const body of bad)
            await refused('POST', EXEC, `${HREF_PREFIX}box/exec`, 400, 'invalid-body', { body });
        // Commands that are not found, in PATH or at a path: no schema can tell.
        const notFound = [{ argv: ['netnsd-no-such-command'] }, { argv: ['/nonexistent/true'] },
                          { argv: ['true'], env: { PATH: '/nonexistent' } }];
        for (const body of notFound) {
            const p = await refused('POST', EXEC, `${HREF_PREFIX}box/exec`, 400, 'invalid-body',
                                    { body, schemaCannotTell: true });
            assert.match(p.detail, /not found/);
        }
        await refused('POST', EXEC, `${HREF_PREFIX}nope/exec`, 404, 'not-found',
                      { body: { argv: ['true'] } });
        await refused('POST', EXEC, `${HREF_PREFIX}stale/exec`, 409, 'not-a-namespace',
                      { body: { argv: ['true'] } });
        await refused('POST', EXEC, `${HREF_PREFIX}%2E%2E/exec`, 400, 'invalid-name',
                      { body: { argv: ['true'] } });
        await refused('POST', EXEC, `${HREF_PREFIX}box/exec`, 415, 'unsupported-media-type',
                      { body: { argv: ['true'] }, headers: { 'content-type': 'text/plain' } });
    });

    test('DELETE one name: 200 with namespace_alive and pids, then 404', async () => {
        // Nothing holds it.
        const { body: made } = await call('DELETE', ENTRY, `${HREF_PREFIX}made`, { status: 200 });
        assert.deepEqual(made, { name: 'made', namespace_alive: false, pids: [] });
        await getChecked(ENTRY, `${HREF_PREFIX}made`, 404); // the model let go already
        assert.ok(!ipList().has('made'));
        assert.ok(!mounted(`${NETNS_DIR}/made`));
        await refused('DELETE', ENTRY, `${HREF_PREFIX}made`, 404, 'not-found');

        // A process is inside: the namespace lives on, and the answer says who holds it, as the
        // model's /proc sweep saw it (so wait until the model has it inside).
        await create('held');
        const inside = keep('ip', 'netns', 'exec', 'held', 'sleep', '120');
        await identify(inside.pid, (h) => h.names.some((n) => n.name === 'held'));
        const { body: held } = await call('DELETE', ENTRY, `${HREF_PREFIX}held`, { status: 200 });
        assert.deepEqual(held, { name: 'held', namespace_alive: true, pids: [inside.pid] });

        // Another name binds it.
        await create('one');
        sh(`touch ${NETNS_DIR}/one-alias && mount --bind ${NETNS_DIR}/one ${NETNS_DIR}/one-alias`);
        await waitForEntries([{ name: 'one-alias', href: 'one-alias', state: 'live' }]);
        const { body: one } = await call('DELETE', ENTRY, `${HREF_PREFIX}one`, { status: 200 });
        assert.deepEqual(one, { name: 'one', namespace_alive: true, pids: [] });
        const { body: alias } = await call('DELETE', ENTRY, `${HREF_PREFIX}one-alias`,
                                           { status: 200 });
        assert.deepEqual(alias, { name: 'one-alias', namespace_alive: false, pids: [] });

        // A stale entry goes too.
        sh(`touch ${NETNS_DIR}/stale3`);
        await waitForEntries([{ name: 'stale3', href: 'stale3', state: 'stale' }]);
        const { body: stale } = await call('DELETE', ENTRY, `${HREF_PREFIX}stale3`,
                                           { status: 200 });
        assert.deepEqual(stale, { name: 'stale3', namespace_alive: false, pids: [] });
    });

    test('DELETE of stacked mounts is 409 busy; again, it removes the next', async () => {
        const lower = await create('lower');
        const upper = await create('upper');
        sh(`mount --bind ${NETNS_DIR}/upper ${NETNS_DIR}/lower`);
        // Reads the entry's inode as the model has it (undefined while it has none).
        const inodeOf = async (name) => {
            const res = await get(`${HREF_PREFIX}${name}`);
            spec.checkResponse('GET', ENTRY, res, `GET ${name}`);
            return res.status === 200 ? JSON.parse(res.text).inode : undefined;
        };
        await waitFor('lower to show upper\'s namespace', async () => {
            if (await inodeOf('lower') !== upper.entry.inode)
                throw new NotYet('not yet');
            return true;
        });
        const busy = await refused('DELETE', ENTRY, `${HREF_PREFIX}lower`, 409, 'busy');
        assert.match(busy.detail, /delete again/);
        await waitFor('lower to show its own namespace again', async () => {
            if (await inodeOf('lower') !== lower.entry.inode)
                throw new NotYet('not yet');
            return true;
        });
        const { body } = await call('DELETE', ENTRY, `${HREF_PREFIX}lower`, { status: 200 });
        assert.deepEqual(body, { name: 'lower', namespace_alive: false, pids: [] });
        assert.equal(await inodeOf('upper'), upper.entry.inode, 'upper is untouched');
    });

    test('DELETE: a directory is 409 not-a-namespace; ?all=true is required; no body',
         async () => {
        sh(`mkdir ${NETNS_DIR}/xdir`);
        await waitForEntries([{ name: 'xdir', href: 'xdir', state: 'stale' }]);
        await refused('DELETE', ENTRY, `${HREF_PREFIX}xdir`, 409, 'not-a-namespace');
        assert.ok(statSync(`${NETNS_DIR}/xdir`).isDirectory(), 'the directory was left alone');

        const before = await list();
        for (const query of ['', '?all=1', '?all=TRUE', '?all', '?everything=true'])
            await refused('DELETE', NETNS, `${NETNS}${query}`, 400, 'bad-request');
        await refused('DELETE', NETNS, `${NETNS}?all=true`, 400, 'unexpected-body',
                      { body: 'x' });
        await refused('DELETE', ENTRY, `${HREF_PREFIX}box`, 400, 'unexpected-body', { body: {} });
        await refused('DELETE', ENTRY, `${HREF_PREFIX}%2E%2E`, 400, 'invalid-name');
        await refused('DELETE', ENTRY, `${HREF_PREFIX}a%zz`, 400, 'bad-request');
        assert.deepEqual((await list()).namespaces, before.namespaces, 'nothing was deleted');
    });

    // Once known daemon bugs, fixed: each test says what the spec says.
    test('HEAD on pids and identify answers without a body',
         async () => {
        for (const path of [`${HREF_PREFIX}box/pids`, `/api/v1/processes/${process.pid}/netns`]) {
            const bytes = await rawExchange(`HEAD ${path} HTTP/1.1\r\nHost: ${HOST}\r\n` +
                                            'Connection: close\r\n\r\n');
            const end = bytes.indexOf('\r\n\r\n');
            assert.match(bytes.toString('latin1', 0, Math.max(end, 0)), /^HTTP\/1\.1 200 /);
            assert.equal(bytes.length - (end + 4), 0, `HEAD ${path}: bytes after the head`);
        }
    });

    test('exec of an empty or NUL-bearing argv or env is 400 invalid-body',
         async () => {
        for (const body of [{ argv: [''] }, { argv: ['true\u0000'] },
                            { argv: ['true'], env: { A: 'x\u0000y' } }])
            await refused('POST', EXEC, `${HREF_PREFIX}box/exec`, 400, 'invalid-body', { body });
    });

    test('a directory a DELETE left alone is still listed', async () => {
        sh(`mkdir -p ${NETNS_DIR}/ydir`);
        await waitForEntries([{ name: 'ydir', href: 'ydir', state: 'stale' }]);
        await refused('DELETE', ENTRY, `${HREF_PREFIX}ydir`, 409, 'not-a-namespace');
        await getChecked(ENTRY, `${HREF_PREFIX}ydir`, 200);
    });

    test('the media type application/json is matched in any case',
         async () => {
        await call('POST', NETNS, NETNS, { body: { name: 'cased' }, status: 201,
                                           headers: { 'content-type': 'Application/JSON' } });
    });

    test('DELETE ?all=true deletes every entry, and reports what it could not', async () => {
        sh(`mkdir -p ${NETNS_DIR}/zdir`);
        const before = await waitForEntries([{ name: 'zdir', href: 'zdir', state: 'stale' }]);
        const dirs = new Set(before.namespaces.filter((e) => statSync(entryFile(e)).isDirectory())
            .map((e) => e.href));
        assert.ok(before.namespaces.some((e) => e.state === 'live'));
        const { body } = await call('DELETE', NETNS, `${NETNS}?all=true`, { status: 200 });
        // Every entry the model listed was tried, in byte order; directories failed.
        assert.deepEqual(body.deleted, before.namespaces.filter((e) => !dirs.has(e.href))
            .map((e) => e.name));
        assert.deepEqual(body.failed.map((f) => f.name), before.namespaces
            .filter((e) => dirs.has(e.href)).map((e) => e.name));
        assert.ok(body.failed.map((f) => f.name).includes('zdir'));
        for (const f of body.failed)
            assert.match(f.detail, /is a directory/);
        // Only directories are left, and no mount: the namespaces with processes inside
        // (attached, held) lost their names too.
        assert.ok(readdirSync(NETNS_DIR).every((n) => statSync(`${NETNS_DIR}/${n}`)
            .isDirectory()), readdirSync(NETNS_DIR).join(', '));
        assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
            .some((line) => line.split(' ')[4]?.startsWith(`${NETNS_DIR}/`)), 'no mount left');
    });

    test('POST /api/v1/audit compares the model with the kernel: a healthy one has no divergence',
        async () => {
            await create('audited');
            const { body } = await call('POST', '/api/v1/audit', '/api/v1/audit', { status: 200 });
            assert.deepEqual(body.divergences, []);
            assert.ok(body.entries >= 1);
            assert.ok(body.duration_ms >= 0);
            await refused('POST', '/api/v1/audit', '/api/v1/audit', 401, 'unauthorized',
                          { auth: false });
            await call('DELETE', ENTRY, `${HREF_PREFIX}audited`, { status: 200 });
        });

    test('POST /api/v1/namespaces/scan scans every fd: this test\'s own sockets make the '
         + 'daemon\'s namespace held by socket', async () => {
        const SCAN = '/api/v1/namespaces/scan';
        const { body } = await call('POST', SCAN, SCAN, { status: 200 });
        assert.ok(body.processes >= 1 && body.fds >= 1 && body.sockets >= 1, JSON.stringify(body));
        assert.ok(body.held_by_socket >= 1);
        assert.ok(body.duration_ms >= 0);
        await refused('POST', SCAN, SCAN, 401, 'unauthorized', { auth: false });
        // This test talks to the daemon over sockets of the daemon's own namespace.
        const self = await waitFor('the scan in the model', async () => {
            const { body: all } = await getChecked('/api/v1/namespaces', '/api/v1/namespaces', 200);
            const mine = all.namespaces.find((n) => n.is_self);
            if (!mine.held_by.includes('socket'))
                throw new NotYet(JSON.stringify(mine));
            return mine;
        });
        assert.ok(self.sockets.count >= 1 && self.sockets.pids.length >= 1);
        // A GET there asks for the namespace whose ns_id is "scan": not a number.
        await getChecked('/api/v1/namespaces/{ns_id}', SCAN, 400);
    });
});

describe('a daemon with --auth-reads and without --enable-exec', () => {
    before(async () => {
        await startDaemon(['--auth-reads']);
    });

    after(killDaemon);

    test('reads need the token too, except /healthz, /openapi.yaml and /', async () => {
        await create('guarded');
        const reads = [
            [NETNS, NETNS],
            [ENTRY, `${HREF_PREFIX}guarded`],
            [ENTRY, `${HREF_PREFIX}nope`],
            ['/api/v1/nsids', '/api/v1/nsids'],
            [PIDS, `${HREF_PREFIX}guarded/pids`],
            [IDENTIFY, `/api/v1/processes/${process.pid}/netns`],
            ['/api/v1/events', '/api/v1/events'],
        ];
        for (const [template, path] of reads) {
            for (const auth of [false, 'Bearer wrong', `Basic ${token}`]) {
                const { res } = await call('GET', template, path, { auth, status: 401 });
                assert.equal(res.headers['www-authenticate'], 'Bearer realm="netnsd"');
            }
            if (template !== '/api/v1/events') {
                const head = await request('HEAD', path);
                assert.deepEqual([head.status, head.body.length], [401, 0], `HEAD ${path}`);
                const { res } = await call('GET', template, path);
                assert.ok([200, 404].includes(res.status), `GET ${path}: ${res.text}`);
            }
        }
        // The event stream, with the token; a WebSocket upgrade without it is refused.
        const stream = await openStream('/api/v1/events', { authorization: `Bearer ${token}` });
        try {
            assert.equal(stream.status, 200);
            assert.equal((await stream.next()).json.type, 'hello');
        } finally {
            stream.close();
        }
        const ws = await openWebSocket('/api/v1/events');
        assert.equal(ws.status, 401, 'a WebSocket upgrade without the token');
        spec.checkResponse('GET', '/api/v1/events', ws, 'WebSocket without the token');
        // Never closed.
        for (const path of ['/healthz', '/openapi.yaml', '/']) {
            await getChecked(path, path, 200);
            assert.equal((await request('HEAD', path)).status, 200, `HEAD ${path}`);
        }
    });

    test('exec is 403 exec-disabled, after the token check', async () => {
        await refused('POST', EXEC, `${HREF_PREFIX}guarded/exec`, 403, 'exec-disabled',
                      { body: { argv: ['true'] } });
        await refused('POST', EXEC, `${HREF_PREFIX}guarded/exec`, 401, 'unauthorized',
                      { body: { argv: ['true'] }, auth: false });
        const { body } = await call('DELETE', ENTRY, `${HREF_PREFIX}guarded`, { status: 200 });
        assert.deepEqual(body, { name: 'guarded', namespace_alive: false, pids: [] });
    });
});

describe('a daemon with --watch-links', () => {
    before(async () => {
        await startDaemon(['--watch-links']);
    });

    after(killDaemon);

    test('link and address events match the schema, and come only to a stream that asks',
         async () => {
        const pointer = spec.schemaPointer('GET', '/api/v1/events', 200, 'application/x-ndjson');
        ipNetns('add', Buffer.from('wired'));
        ipNetns('set', Buffer.from('wired'), 'auto');
        // netnsd hears the namespace once it has seen it with its nsid.
        const deadline = Date.now() + 15000;
        for (;;) {
            const { res, body } = await getChecked(ENTRY, `${HREF_PREFIX}wired`);
            if (res.status === 200 && body.nsid !== null)
                break;
            assert.ok(Date.now() < deadline,
                      `netnsd saw wired and its nsid: ${res.status} ${JSON.stringify(body)}`);
            await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const plain = await openStream('/api/v1/events');
        const links = await openStream('/api/v1/events?types=link,address');
        try {
            const next = async () => spec.checkValue(pointer, (await links.next()).json, 'links');
            assert.equal((await next()).type, 'hello');
            assert.equal((await plain.next()).json.type, 'hello');
            sh('ip link add cw0 type veth peer name cw1 netns wired' +
               ' && ip -n wired link set cw1 up' +
               ' && ip -n wired addr add 10.66.0.1/24 dev cw1' +
               ' && ip -n wired addr add fd00:66::1/64 dev cw1 nodad' +
               ' && ip -n wired addr del 10.66.0.1/24 dev cw1' +
               ' && ip link del cw0');
            const wanted = new Set(['link added', 'link changed', 'link removed', 'address added',
                                    'address removed']);
            const seen = new Set();
            while ([...wanted].some((w) => !seen.has(w))) {
                const e = await next();
                seen.add(`${e.type} ${e.action}`);
                assert.ok(['link', 'address'].includes(e.type), JSON.stringify(e));
            }
            // The default stream has none of them: the next thing it gets is this add.
            // (Other sandboxes' namespaces, on a shared machine, may be destroyed meanwhile.)
            ipNetns('add', Buffer.from('after-links'));
            let first = (await plain.next()).json;
            while (first.type === 'destroyed' && first.name === null)
                first = (await plain.next()).json;
            assert.deepEqual([first.type, first.name], ['add', 'after-links']);
        } finally {
            plain.close();
            links.close();
        }
    });
});
