// The contract test: runs the real daemon against real namespaces and checks every answer
// against openapi.yaml. It must run inside tests/support/sandbox (a private mount and network
// namespace with tmpfs on /run and /run/netns), which ctest does:
//   tests/support/sandbox node --test tests/contract/contract.test.mjs
// with NETNSD_BIN and NETNSD_PRINT_ROUTES pointing at the built binaries. The daemon runs
// twice: the second run checks what a client resuming across a restart gets.
// Node 18.19 (Debian 12's) must be enough: node:test's test/describe/before/after, node:http,
// node:net and nothing newer (no fetch, no WebSocket, no mock timers).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { HOST, NotYet, PORT, Spec, openStream, openWebSocket, rawRequest, request, waitFor }
    from './support.mjs';

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

function output() {
    return `\n--- netnsd output ---\n${daemonOutput}---`;
}

// Starts netnsd on HOST:PORT and waits until it answers /healthz.
async function startDaemon(extraArgs = []) {
    const bin = requireEnv('NETNSD_BIN');
    daemonOutput = '';
    daemon = spawn(bin, ['--listen', `${HOST}:${PORT}`, '--netns-dir', NETNS_DIR,
                         '--max-stream-clients', String(MAX_STREAMS), ...extraArgs],
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
}

// What a daemon that has just started shows, before anything changes: its revision, and its
// start revision, which is that minus the events of its first scan (one `add` per live entry,
// one `nsid` per nsid that no live entry names). `at` is a time just after the answers.
async function firstLook() {
    const { body: health } = await getChecked('/healthz', '/healthz', 200);
    const listing = await list();
    const { body: nsids } = await getChecked('/api/v1/nsids', '/api/v1/nsids', 200);
    const at = Date.now();
    assert.deepEqual([listing.revision, nsids.revision], [health.revision, health.revision],
                     'nothing changed while the first look was taken');
    const events = listing.namespaces.filter((e) => e.state === 'live').length +
        nsids.nsids.filter((r) => r.name === null).length;
    return { revision: health.revision, base: health.revision - events, events, at };
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

    after(() => {
        if (daemon && daemon.exitCode === null && daemon.signalCode === null)
            daemon.kill('SIGKILL');
    });

    test('the revision starts at the daemon\'s start time in microseconds, not at 0', () => {
        assertStartRevision(firstRun.look, startedAt);
        // The first scan found `alpha` live (one add) and `stale` (no event).
        assert.equal(firstRun.look.events, 1, 'the first scan recorded one event');
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
        const paths = {
            '/api/v1/netns': 'GET, HEAD',
            '/api/v1/netns/alpha': 'GET, HEAD',
            '/api/v1/nsids': 'GET, HEAD',
            '/api/v1/events': 'GET',
            '/healthz': 'GET, HEAD',
            '/openapi.yaml': 'GET, HEAD',
            '/': 'GET, HEAD',
        };
        for (const [p, allow] of Object.entries(paths)) {
            const methods = ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
            if (!allow.includes('HEAD'))
                methods.push('HEAD');
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
        const stream = await openStream('/api/v1/events?snapshot=true');
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
            const [add, nsid] = events;
            assert.deepEqual([add.name, add.nsid, add.namespace.href, add.namespace.state],
                             ['ev1', null, `${HREF_PREFIX}ev1`, 'live']);
            assert.deepEqual([nsid.name, nsid.nsid, nsid.namespace.nsid], ['ev1', 7, 7]);
            const del = events.find((e) => e.type === 'delete');
            assert.deepEqual([del.name, del.namespace.href], ['ev1', `${HREF_PREFIX}ev1`]);
            const destroyed = events.find((e) => e.type === 'destroyed');
            assert.deepEqual([destroyed.name, destroyed.nsid, destroyed.namespace],
                             [null, 7, null]);
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
            [`/api/v1/events?since=${recorded.since}`, { accept: 'text/event-stream' }, 0],
            [`/api/v1/events?format=sse`, { 'last-event-id': String(recorded.since + 2) }, 2],
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
        ws = await openWebSocket(`/api/v1/events?since=${recorded.since}`);
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
            const first = await next();
            assert.deepEqual([first.type, first.revision, first.name],
                             ['add', firstRun.look.base + 1, 'alpha'], path);
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
            assert.deepEqual([add.type, add.name, add.revision], ['add', 'resume', current + 1],
                             `${path}: no reset, the next event`);
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

    after(() => {
        if (daemon && daemon.exitCode === null && daemon.signalCode === null)
            daemon.kill('SIGKILL');
    });

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
        let path = `/api/v1/events?since=${oldest}`;
        let stream = await openStream(path);
        try {
            const next = async () => spec.checkValue(pointer, (await stream.next()).json, path);
            assert.equal((await next()).type, 'hello', path);
            for (let r = oldest + 1; r <= look.revision; ++r) {
                const e = await next();
                assert.equal(e.revision, r, path);
                assert.ok(['add', 'nsid'].includes(e.type), `${path}: a first-scan event`);
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
