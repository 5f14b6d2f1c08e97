/**
 * The API client against a real HTTP server on 127.0.0.1 (started here): what it asks for, what it sends, and
 * what it makes of each kind of answer.
 */
import assert from 'node:assert/strict';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';

import { ServerConnection } from '@jupyterlab/services';

import { AgiflowApi, AgiflowApiError, errorMessage } from '../src/api';

interface Seen {
  method: string;
  /** path and query as sent */
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

interface Answer {
  status: number;
  statusText?: string;
  contentType?: string;
  body: string;
}

const json = (status: number, value: unknown): Answer => ({ status, body: JSON.stringify(value) });

let server: Server;
let base: string;
let seen: Seen[] = [];
let answer: Answer = json(200, {});

function api(token = 'secret-token'): AgiflowApi {
  return new AgiflowApi(ServerConnection.makeSettings({ baseUrl: base, token }));
}

function last(): Seen {
  assert.ok(seen.length > 0, 'no request reached the server');
  return seen[seen.length - 1];
}

before(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString()
      });
      res.writeHead(answer.status, answer.statusText, { 'Content-Type': answer.contentType ?? 'application/json' });
      res.end(answer.body);
    });
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/lab-base/`;
});

after(async () => {
  await new Promise<void>(resolve => server.close(() => resolve()));
});

beforeEach(() => {
  seen = [];
  answer = json(200, { items: [], next_cursor: null });
});

describe('AgiflowApi requests', () => {
  it("asks under the server's base URL with the Jupyter token, and answers the JSON body", async () => {
    answer = json(200, { items: [{ slug: 'default' }] });
    const projects = await api().listProjects();
    assert.deepEqual(projects, { items: [{ slug: 'default' }] });
    assert.equal(last().method, 'GET');
    assert.equal(last().url, '/lab-base/agiflow/api/v1/projects');
    assert.equal(last().headers.authorization, 'token secret-token');
  });

  it('percent-encodes each path segment', async () => {
    answer = json(200, { name: 'a/b' });
    await api().getPrompt('my project', 'a/b', 'production');
    assert.equal(last().url, '/lab-base/agiflow/api/v1/projects/my%20project/prompts/a%2Fb?label=production');
  });

  it('leaves out query parameters that are empty, null or not given', async () => {
    await api().listPrompts('default', { search: '', limit: 20, cursor: null });
    assert.equal(last().url, '/lab-base/agiflow/api/v1/projects/default/prompts?limit=20');
    await api().listTraces('default', { status: 'error', model: null, min_latency_ms: 250, cursor: 'c2' });
    assert.equal(
      last().url,
      '/lab-base/agiflow/api/v1/projects/default/traces?status=error&min_latency_ms=250&limit=50&cursor=c2'
    );
  });

  it('asks for failed items only when told to', async () => {
    await api().listRunResults('default', 'run-1', { failedOnly: true, limit: 10 });
    assert.equal(
      last().url,
      '/lab-base/agiflow/api/v1/projects/default/evals/runs/run-1/results?failed_only=true&limit=10'
    );
    await api().listRunResults('default', 'run-1');
    assert.equal(last().url, '/lab-base/agiflow/api/v1/projects/default/evals/runs/run-1/results?limit=50');
  });

  it('asks for metrics with the measures as one comma-separated parameter', async () => {
    answer = json(200, { points: [] });
    await api().getMetrics('default', {
      start: '2026-03-01T00:00:00Z',
      end: '2026-03-02T00:00:00Z',
      bucket: 'hour',
      groupBy: null,
      measures: ['count', 'latency']
    });
    const url = new URL(last().url, 'http://x');
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      start: '2026-03-01T00:00:00Z',
      end: '2026-03-02T00:00:00Z',
      bucket: 'hour',
      measures: 'count,latency'
    });
  });

  it('compares runs given as one comma-separated list, the baseline first', async () => {
    await api().compareRuns('default', ['base', 'new']);
    assert.equal(last().url, '/lab-base/agiflow/api/v1/projects/default/evals/compare?runs=base%2Cnew&limit=50');
  });

  it('posts a body as JSON', async () => {
    answer = json(201, { id: 'score-1' });
    await api().createScore('default', { trace_id: 't1', name: 'helpful', value: true });
    assert.equal(last().method, 'POST');
    assert.equal(last().url, '/lab-base/agiflow/api/v1/projects/default/scores');
    assert.equal(last().headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(last().body), { trace_id: 't1', name: 'helpful', value: true });
  });

  it('posts an action without a body', async () => {
    answer = json(200, { id: 'job-1', state: 'cancelled' });
    const job = await api().cancelJob('default', 'job-1');
    assert.equal(job.state, 'cancelled');
    assert.equal(last().method, 'POST');
    assert.equal(last().url, '/lab-base/agiflow/api/v1/projects/default/jobs/job-1/cancel');
    assert.equal(last().body, '');
  });
});

describe('AgiflowApi errors', () => {
  async function failure(promise: Promise<unknown>): Promise<AgiflowApiError> {
    try {
      await promise;
    } catch (reason) {
      assert.ok(reason instanceof AgiflowApiError, `not an AgiflowApiError: ${String(reason)}`);
      return reason;
    }
    assert.fail('the request did not fail');
  }

  it("throws the API's error body as it is: message, code, status and details", async () => {
    answer = json(422, {
      error: { code: 'validation_failed', message: 'name: too long', details: { field: 'name' } }
    });
    const error = await failure(api().listPrompts('default'));
    assert.equal(error.message, 'name: too long');
    assert.equal(error.code, 'validation_failed');
    assert.equal(error.status, 422);
    assert.deepEqual(error.details, { field: 'name' });
  });

  it('says the server extension is not enabled when Jupyter itself answers 404', async () => {
    answer = { status: 404, contentType: 'text/html', body: '<html>404: Not Found</html>' };
    const error = await failure(api().listProjects());
    assert.equal(error.code, 'not_found');
    assert.match(error.message, /server extension is not enabled/);
  });

  it('names the HTTP status of any other answer without an error body', async () => {
    answer = { status: 502, statusText: 'Bad Gateway', contentType: 'text/plain', body: 'upstream down' };
    const error = await failure(api().listProjects());
    assert.equal(error.code, 'http_error');
    assert.equal(error.status, 502);
    assert.equal(error.message, 'The server answered HTTP 502 Bad Gateway');
  });

  it('does not pass off a successful answer that is not JSON as data', async () => {
    answer = { status: 200, contentType: 'text/html', body: '<html>login</html>' };
    const error = await failure(api().listProjects());
    assert.equal(error.code, 'bad_response');
    assert.equal(error.status, 200);
  });

  it('says it cannot reach the server when nothing listens', async () => {
    const closed = createServer();
    await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>(resolve => closed.close(() => resolve()));
    const unreachable = new AgiflowApi(
      ServerConnection.makeSettings({ baseUrl: `http://127.0.0.1:${port}/`, token: '' })
    );
    const error = await failure(unreachable.listProjects());
    assert.equal(error.code, 'network_error');
    assert.equal(error.status, 0);
    assert.match(error.message, /^Cannot reach the Jupyter server: /);
  });
});

describe('AgiflowApi.eventsUrl', () => {
  it("is the project's event socket under the WebSocket URL, resuming after an event id, with the token", () => {
    const url = new URL(api('tok').eventsUrl('my project', 42));
    assert.equal(url.protocol, 'ws:');
    assert.equal(url.pathname, '/lab-base/agiflow/api/v1/events');
    assert.deepEqual(Object.fromEntries(url.searchParams), { project: 'my project', after: '42', token: 'tok' });
  });

  it('leaves the token out when there is none (the session cookie authenticates)', () => {
    const url = new URL(api('').eventsUrl('default', 0));
    assert.equal(url.searchParams.has('token'), false);
  });
});

describe('errorMessage', () => {
  it("is an error's message, or anything else as text", () => {
    assert.equal(errorMessage(new Error('boom')), 'boom');
    assert.equal(errorMessage('plain'), 'plain');
  });
});
