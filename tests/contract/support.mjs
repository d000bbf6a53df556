// Helpers for the contract test: the spec and its schemas, a plain HTTP client, a raw-socket
// client for requests the daemon answers by closing, event stream clients (NDJSON, SSE and a
// minimal WebSocket), and polling with a deadline.
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { parse as parseYaml } from 'yaml';

// --- the spec ------------------------------------------------------------------------------

const SPEC_ID = 'https://netnsd.invalid/openapi.yaml';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

export class Spec {
    constructor(file) {
        this.file = file;
        this.bytes = readFileSync(file);
        this.doc = parseYaml(this.bytes.toString('utf8'));
        // allowUnionTypes: `type: [integer, 'null']` is how OpenAPI 3.1 says "nullable".
        // strictTuples off: `prefixItems` with `items` is an open tuple (exec's argv: a first
        // item with its own rules, then any number of others), not a mistake.
        this.ajv = new Ajv2020({ strict: true, strictTuples: false, allErrors: true,
                                 allowUnionTypes: true });
        addFormats(this.ajv);
        this.ajv.addFormat('uint64', {
            type: 'number',
            validate: (n) => Number.isSafeInteger(n) && n >= 0,
        });
        // The document's own keywords are not JSON Schema keywords; schemas are reached by $ref.
        this.ajv.addVocabulary(['openapi', 'info', 'servers', 'tags', 'security', 'paths',
                                'components', 'webhooks', 'jsonSchemaDialect', 'externalDocs']);
        this.ajv.addSchema(this.doc, SPEC_ID);
        this.validators = new Map();
    }

    // Every documented (METHOD, path) pair, HEAD excluded where GET is documented (it is
    // implied by GET).
    operations() {
        const out = [];
        for (const [path, item] of Object.entries(this.doc.paths ?? {})) {
            for (const method of HTTP_METHODS) {
                if (!item[method])
                    continue;
                if (method === 'head' && item.get)
                    continue;
                out.push({ method: method.toUpperCase(), path, op: item[method] });
            }
        }
        return out;
    }

    operation(method, path) {
        const op = this.doc.paths?.[path]?.[method.toLowerCase()];
        if (!op)
            throw new Error(`the spec has no ${method} ${path}`);
        return op;
    }

    // Follows a local $ref; returns [object, JSON pointer].
    deref(obj, pointer) {
        while (obj && typeof obj.$ref === 'string') {
            if (!obj.$ref.startsWith('#/'))
                throw new Error(`only local $refs are supported: ${obj.$ref}`);
            pointer = obj.$ref.slice(1);
            obj = pointer.split('/').slice(1).map(unescapePointer)
                .reduce((o, key) => o?.[key], this.doc);
        }
        return [obj, pointer];
    }

    // The validator of the schema at a JSON pointer into the document.
    validator(pointer) {
        let v = this.validators.get(pointer);
        if (!v) {
            v = this.ajv.compile({ $ref: `${SPEC_ID}#${pointer}` });
            this.validators.set(pointer, v);
        }
        return v;
    }

    // Checks that a response's status and media type are documented for (method, path), and
    // that its body validates against the schema declared for them. Returns the parsed body.
    checkResponse(method, path, res, where) {
        const op = this.operation(method, path);
        const status = String(res.status);
        const key = [status, `${status[0]}XX`, 'default'].find((k) => op.responses?.[k]);
        if (!key)
            throw new Error(`${where}: status ${status} is not documented for ${method} ${path}`);
        const opPointer = `/paths/${escapePointer(path)}/${method.toLowerCase()}`;
        const [response, pointer] = this.deref(op.responses[key], `${opPointer}/responses/${key}`);
        const type = res.mediaType;
        if (!response.content?.[type]) {
            throw new Error(`${where}: ${method} ${path} documents no ${type} body for ` +
                            `${status} (documented: ${Object.keys(response.content ?? {})})`);
        }
        const body = this.decodeBody(res, where);
        this.assertValid(`${pointer}/content/${escapePointer(type)}/schema`, body, where, res);
        this.checkHeaders(response, pointer, res, where);
        return body;
    }

    // The response headers the spec documents for a response: those it marks required must be
    // there, and every one that is there must match its schema.
    checkHeaders(response, pointer, res, where) {
        for (const [name, declared] of Object.entries(response.headers ?? {})) {
            const [header, headerPointer] = this.deref(declared,
                                                       `${pointer}/headers/${escapePointer(name)}`);
            const value = res.headers[name.toLowerCase()];
            if (value === undefined) {
                if (header.required)
                    throw new Error(`${where}: the ${res.status} response lacks ${name}`);
                continue;
            }
            if (!header.schema)
                continue;
            const validate = this.validator(`${headerPointer}/schema`);
            if (!validate(value)) {
                const errors = this.ajv.errorsText(validate.errors, { separator: '\n  ' });
                throw new Error(`${where}: the ${name} header ${JSON.stringify(value)} does not ` +
                                `match ${headerPointer}/schema:\n  ${errors}`);
            }
        }
    }

    // Whether a JSON request body is one the spec's requestBody schema for (method, path)
    // accepts: true or false, or undefined when the operation documents no JSON body or the
    // body is not JSON at all.
    requestAccepted(method, path, text) {
        const op = this.operation(method, path);
        const opPointer = `/paths/${escapePointer(path)}/${method.toLowerCase()}`;
        if (!op.requestBody)
            return undefined;
        const [requestBody, pointer] = this.deref(op.requestBody, `${opPointer}/requestBody`);
        if (!requestBody.content?.['application/json'])
            return undefined;
        let value;
        try {
            value = JSON.parse(text);
        } catch {
            return undefined;
        }
        return this.validator(`${pointer}/content/application~1json/schema`)(value);
    }

    // Validates a body against a component schema: for answers that no single operation
    // documents (405 and no-route), which the spec describes with the Problem schema.
    checkAgainst(schemaName, res, where) {
        const body = this.decodeBody(res, where);
        this.assertValid(`/components/schemas/${escapePointer(schemaName)}`, body, where, res);
        return body;
    }

    // Validates one JSON value (a line of a stream, a WebSocket message) against a schema.
    checkValue(pointer, value, where) {
        this.assertValid(pointer, value, where, { status: 200, text: JSON.stringify(value) });
        return value;
    }

    // The pointer of the schema documented for (method, path, status, media type).
    schemaPointer(method, path, status, mediaType) {
        const op = this.operation(method, path);
        const key = String(status);
        if (!op.responses?.[key])
            throw new Error(`status ${key} is not documented for ${method} ${path}`);
        const opPointer = `/paths/${escapePointer(path)}/${method.toLowerCase()}`;
        const [response, pointer] = this.deref(op.responses[key], `${opPointer}/responses/${key}`);
        if (!response.content?.[mediaType])
            throw new Error(`${method} ${path} documents no ${mediaType} body for ${key}`);
        return `${pointer}/content/${escapePointer(mediaType)}/schema`;
    }

    decodeBody(res, where) {
        if (res.mediaType === 'application/json' || res.mediaType.endsWith('+json')) {
            try {
                return JSON.parse(res.text);
            } catch (e) {
                throw new Error(`${where}: the body is not JSON (${e.message}): ${res.text}`);
            }
        }
        return res.text;
    }

    assertValid(pointer, body, where, res) {
        const validate = this.validator(pointer);
        if (!validate(body)) {
            const errors = this.ajv.errorsText(validate.errors, { separator: '\n  ' });
            throw new Error(`${where}: the ${res.status} body does not match ${pointer}:\n  ` +
                            `${errors}\nbody: ${res.text.slice(0, 2000)}`);
        }
    }
}

function escapePointer(s) {
    return s.replaceAll('~', '~0').replaceAll('/', '~1');
}

function unescapePointer(s) {
    return s.replaceAll('~1', '/').replaceAll('~0', '~');
}

// --- HTTP ----------------------------------------------------------------------------------

export const HOST = '127.0.0.1';
export const PORT = 9321;
const REQUEST_TIMEOUT_MS = 5000;

// With NETNSD_CONTRACT_TLS=1 (ctest's contract_tls) every client here speaks HTTPS, trusting a
// CA made now with openssl in the sandbox's /run, and TLS_ARGS are the daemon's flags for the
// certificate it signed.
const TLS_DIR = '/run/netnsd-contract-tls';
export const TLS_ARGS = process.env.NETNSD_CONTRACT_TLS === '1' ? makePki() : [];
const TLS_CA = TLS_ARGS.length ? readFileSync(`${TLS_DIR}/ca.crt`) : null;

function makePki() {
    mkdirSync(TLS_DIR, { recursive: true });
    const openssl = (...args) => execFileSync('openssl', args, { stdio: 'ignore' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl('req', '-x509', ...ec, '-keyout', `${TLS_DIR}/ca.key`, '-out', `${TLS_DIR}/ca.crt`,
            '-days', '2', '-subj', '/CN=netnsd-contract-ca');
    openssl('req', ...ec, '-keyout', `${TLS_DIR}/server.key`, '-out', `${TLS_DIR}/server.csr`,
            '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1');
    openssl('x509', '-req', '-in', `${TLS_DIR}/server.csr`, '-CA', `${TLS_DIR}/ca.crt`,
            '-CAkey', `${TLS_DIR}/ca.key`, '-CAcreateserial', '-copy_extensions', 'copy',
            '-out', `${TLS_DIR}/server.crt`, '-days', '2');
    return ['--tls-cert', `${TLS_DIR}/server.crt`, '--tls-key', `${TLS_DIR}/server.key`];
}

// A client connection to the daemon: TLS or plain, as the run is.
function connect() {
    return TLS_CA ? tls.connect({ host: HOST, port: PORT, ca: TLS_CA })
                  : net.connect({ host: HOST, port: PORT });
}

const CONNECT_EVENT = TLS_CA ? 'secureConnect' : 'connect';

function httpRequest(options) {
    return TLS_CA ? https.request({ ...options, ca: TLS_CA }) : http.request(options);
}

function finish(status, headers, body) {
    const contentType = headers['content-type'] ?? '';
    return {
        status,
        headers,
        body,
        text: body.toString('utf8'),
        mediaType: contentType.split(';')[0].trim().toLowerCase(),
    };
}

// One request on its own connection. `path` is sent exactly as given (no normalisation of
// dot segments or escapes, unlike fetch()).
export function request(method, path, { headers = {}, body } = {}) {
    // Node frames no body on GET unless told its length: say it, so the daemon sees the body.
    if (body !== undefined && !Object.keys(headers).some((h) => /^content-length$/i.test(h)))
        headers = { ...headers, 'content-length': String(Buffer.byteLength(body)) };
    return new Promise((resolve, reject) => {
        const req = httpRequest({ host: HOST, port: PORT, method, path, headers, agent: false,
                                  timeout: REQUEST_TIMEOUT_MS });
        req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
        req.on('error', reject);
        req.on('response', (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('error', reject);
            res.on('end', () => resolve(finish(res.statusCode, res.headers,
                                               Buffer.concat(chunks))));
        });
        req.end(body);
    });
}

// Writes raw bytes on a new connection and parses the one response that comes back, for
// requests the daemon answers and then closes (oversized headers or body). A reset after the
// response arrived is fine.
export function rawRequest(bytes) {
    return new Promise((resolve, reject) => {
        const socket = connect();
        const chunks = [];
        let settled = false;
        const done = (err) => {
            if (settled)
                return;
            settled = true;
            clearTimeout(timer);
            socket.destroy();
            const data = Buffer.concat(chunks);
            try {
                resolve(parseRawResponse(data));
            } catch (e) {
                reject(err ?? e);
            }
        };
        const timer = setTimeout(() => done(new Error('raw request timed out')),
                                 REQUEST_TIMEOUT_MS);
        socket.on(CONNECT_EVENT, () => socket.write(bytes));
        socket.on('data', (c) => chunks.push(c));
        socket.on('end', () => done());
        socket.on('close', () => done());
        socket.on('error', (e) => done(e));
    });
}

// Writes raw bytes on a new connection and returns every byte the server sends until it
// closes the connection (send `Connection: close`): for checking what follows a response head,
// e.g. that a HEAD response has no body.
export function rawExchange(bytes) {
    return new Promise((resolve, reject) => {
        const socket = connect();
        const chunks = [];
        const timer = setTimeout(() => {
            socket.destroy();
            reject(new Error('the server did not close the connection'));
        }, REQUEST_TIMEOUT_MS);
        socket.on(CONNECT_EVENT, () => socket.write(bytes));
        socket.on('data', (c) => chunks.push(c));
        // A reset after the answer is fine: 'close' follows every 'error', with what came.
        socket.on('error', () => {});
        socket.on('close', () => {
            clearTimeout(timer);
            resolve(Buffer.concat(chunks));
        });
    });
}

function parseRawResponse(data) {
    const end = data.indexOf('\r\n\r\n');
    if (end < 0)
        throw new Error(`no complete response: ${JSON.stringify(data.toString('latin1'))}`);
    const lines = data.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3}) /.exec(lines[0]);
    if (!m)
        throw new Error(`bad status line: ${lines[0]}`);
    const headers = {};
    for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');
        headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    const body = data.subarray(end + 4, end + 4 + length);
    if (body.length !== length)
        throw new Error(`short body: ${body.length} of ${length} bytes`);
    return finish(Number(m[1]), headers, body);
}

// --- event streams -------------------------------------------------------------------------

// Messages arriving one by one, read with next(); next() fails at a deadline or when the
// stream ends first.
class Inbox {
    constructor() {
        this.items = [];
        this.waiters = [];
        this.ended = null; // why the stream ended, once it has
    }

    push(item) {
        const w = this.waiters.shift();
        if (w)
            w.resolve(item);
        else
            this.items.push(item);
    }

    end(why) {
        if (this.ended)
            return;
        this.ended = why;
        for (const w of this.waiters.splice(0))
            w.reject(new Error(`the stream ended (${why}) before the next message`));
    }

    next(timeoutMs = 15000) {
        if (this.items.length)
            return Promise.resolve(this.items.shift());
        if (this.ended)
            return Promise.reject(new Error(`the stream ended (${this.ended})`));
        return new Promise((resolve, reject) => {
            const w = { resolve, reject };
            const timer = setTimeout(() => {
                this.waiters.splice(this.waiters.indexOf(w), 1);
                reject(new Error(`no message within ${timeoutMs} ms`));
            }, timeoutMs);
            w.resolve = (v) => { clearTimeout(timer); resolve(v); };
            w.reject = (e) => { clearTimeout(timer); reject(e); };
            this.waiters.push(w);
        });
    }
}

// GET an event stream over plain HTTP. Resolves once the response head arrives: a stream
// (status 200: messages through next(); NDJSON lines as {json} and SSE events as
// {id, event, data, json}) or a finished response (any other status: its body in `res`).
export function openStream(path, headers = {}) {
    return new Promise((resolve, reject) => {
        const req = httpRequest({ host: HOST, port: PORT, method: 'GET', path, headers,
                                  agent: false });
        req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error('no response head')));
        req.on('error', reject);
        req.on('response', (res) => {
            req.setTimeout(0);
            if (res.statusCode !== 200) {
                const chunks = [];
                res.on('data', (c) => chunks.push(c));
                res.on('end', () => resolve({ res: finish(res.statusCode, res.headers,
                                                          Buffer.concat(chunks)) }));
                return;
            }
            const inbox = new Inbox();
            const closed = new Promise((r) => res.on('close', r));
            const mediaType = (res.headers['content-type'] ?? '').split(';')[0].trim();
            const sse = mediaType === 'text/event-stream';
            let buffer = '';
            res.setEncoding('utf8');
            res.on('data', (text) => {
                buffer += text;
                const separator = sse ? '\n\n' : '\n';
                let at;
                while ((at = buffer.indexOf(separator)) >= 0) {
                    const block = buffer.slice(0, at);
                    buffer = buffer.slice(at + separator.length);
                    const message = sse ? parseSse(block) : { json: JSON.parse(block) };
                    if (message)
                        inbox.push(message);
                }
            });
            res.on('end', () => inbox.end(buffer ? 'mid-message' : 'cleanly'));
            res.on('aborted', () => inbox.end('aborted'));
            res.on('error', (e) => inbox.end(e.message));
            resolve({
                status: res.statusCode,
                headers: res.headers,
                mediaType,
                next: (t) => inbox.next(t),
                ended: () => inbox.ended,
                whenEnded: () => closed.then(() => inbox.ended),
                close: () => req.destroy(),
            });
        });
        req.end();
    });
}

function parseSse(block) {
    const fields = {};
    for (const line of block.split('\n')) {
        if (line.startsWith(':'))
            continue; // a comment: the keep-alive
        const colon = line.indexOf(':');
        const name = line.slice(0, colon);
        const value = line.slice(colon + 1).replace(/^ /, '');
        fields[name] = fields[name] === undefined ? value : `${fields[name]}\n${value}`;
    }
    if (fields.data === undefined)
        return null;
    return { id: fields.id, event: fields.event, data: fields.data,
             json: JSON.parse(fields.data) };
}

// A minimal WebSocket client (RFC 6455): the upgrade, text messages, answering pings, and the
// close code. Enough to check what the daemon sends; not a general client.
export function openWebSocket(path) {
    return new Promise((resolve, reject) => {
        const key = randomBytes(16).toString('base64');
        const socket = connect();
        const inbox = new Inbox();
        const closed = new Promise((r) => socket.on('close', r));
        let head = null;
        let buffer = Buffer.alloc(0);
        let fragments = [];
        let closeCode = null;
        const timer = setTimeout(() => {
            socket.destroy();
            reject(new Error('no upgrade response'));
        }, REQUEST_TIMEOUT_MS);

        const send = (opcode, payload = Buffer.alloc(0)) => {
            // Client frames are masked; payloads here are small (< 126 bytes).
            const mask = randomBytes(4);
            const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
            socket.write(Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]),
                                        mask, masked]));
        };

        const parseFrames = () => {
            for (;;) {
                if (buffer.length < 2)
                    return;
                const opcode = buffer[0] & 0x0f;
                const fin = (buffer[0] & 0x80) !== 0;
                let length = buffer[1] & 0x7f;
                let offset = 2;
                if (length === 126) {
                    if (buffer.length < 4)
                        return;
                    length = buffer.readUInt16BE(2);
                    offset = 4;
                } else if (length === 127) {
                    if (buffer.length < 10)
                        return;
                    length = Number(buffer.readBigUInt64BE(2));
                    offset = 10;
                }
                if (buffer[1] & 0x80)
                    throw new Error('the server sent a masked frame');
                if (buffer.length < offset + length)
                    return;
                const payload = buffer.subarray(offset, offset + length);
                buffer = buffer.subarray(offset + length);
                if (opcode === 0x1 || opcode === 0x0) {
                    fragments.push(Buffer.from(payload));
                    if (fin) {
                        const text = Buffer.concat(fragments).toString('utf8');
                        fragments = [];
                        inbox.push({ json: JSON.parse(text), text });
                    }
                } else if (opcode === 0x2) {
                    throw new Error('the server sent a binary message');
                } else if (opcode === 0x8) {
                    closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
                    send(0x8, payload.subarray(0, 2));
                    inbox.end(`closed ${closeCode}`);
                } else if (opcode === 0x9) {
                    send(0xA, payload);
                }
            }
        };

        // Not upgraded: an ordinary response; hand back its status, headers and body.
        const finishPlain = () => {
            const length = Number(head.headers['content-length'] ?? 0);
            if (buffer.length < length)
                return;
            socket.destroy();
            resolve(finish(head.status, head.headers, buffer.subarray(0, length)));
        };

        socket.on(CONNECT_EVENT, () => {
            socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\n` +
                         'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
                         `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
        });
        socket.on('data', (data) => {
            buffer = Buffer.concat([buffer, data]);
            if (!head) {
                const end = buffer.indexOf('\r\n\r\n');
                if (end < 0)
                    return;
                clearTimeout(timer);
                const lines = buffer.subarray(0, end).toString('latin1').split('\r\n');
                head = { status: Number(lines[0].split(' ')[1]), headers: {} };
                for (const line of lines.slice(1)) {
                    const colon = line.indexOf(':');
                    head.headers[line.slice(0, colon).trim().toLowerCase()] =
                        line.slice(colon + 1).trim();
                }
                buffer = buffer.subarray(end + 4);
                if (head.status !== 101)
                    return finishPlain();
                const accept = createHash('sha1')
                    .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
                resolve({
                    status: head.status,
                    headers: head.headers,
                    acceptOk: head.headers['sec-websocket-accept'] === accept,
                    next: (t) => inbox.next(t),
                    closeCode: () => closeCode,
                    whenEnded: () => closed.then(() => closeCode),
                    close: () => socket.destroy(),
                });
            }
            if (head.status !== 101) {
                finishPlain();
            } else {
                try {
                    parseFrames();
                } catch (e) {
                    inbox.end(e.message);
                    socket.destroy();
                }
            }
        });
        socket.on('error', (e) => {
            clearTimeout(timer);
            inbox.end(e.message);
            if (!head)
                reject(e);
        });
        socket.on('close', () => inbox.end(closeCode ? `closed ${closeCode}` : 'closed'));
    });
}

// --- waiting -------------------------------------------------------------------------------

// Thrown by a probe to say "not yet" (with why); any other error fails the wait at once.
export class NotYet extends Error {}

// Calls `probe` until it returns a value other than undefined, or fails at the deadline with
// the last reason it gave.
export async function waitFor(what, probe, { timeoutMs = 15000, intervalMs = 25 } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last = 'condition not met';
    for (;;) {
        try {
            const value = await probe();
            if (value !== undefined)
                return value;
        } catch (e) {
            if (!(e instanceof NotYet))
                throw e;
            last = e.message;
        }
        if (Date.now() > deadline)
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${last}`);
        await delay(intervalMs);
    }
}
