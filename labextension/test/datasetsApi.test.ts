/**
 * The Datasets view's import client against a real HTTP server on 127.0.0.1: the file goes up as-is with its
 * content type and the mapping as JSON in the query, and a refused upload's rows reach the view.
 */
import assert from 'node:assert/strict';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';

import { ServerConnection } from '@jupyterlab/services';

import { AgiflowApi, AgiflowApiError } from '../src/api';
import { DatasetsApi, rowErrors } from '../src/datasetsApi';
import { canEdit, isOwner } from '../src/manageRoles';

interface Seen {
  method: string;
  url: string;
  contentType: string | undefined;
  body: string;
}

let server: Server;
let seen: Seen[] = [];
let answer: { status: number; body: string } = { status: 201, body: '{}' };
let datasets: DatasetsApi;

before(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        contentType: req.headers['content-type'],
        body: Buffer.concat(chunks).toString()
      });
      res.writeHead(answer.status, { 'Content-Type': 'application/json' });
      res.end(answer.body);
    });
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const settings = ServerConnection.makeSettings({
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    token: 't'
  });
  datasets = new DatasetsApi(new AgiflowApi(settings), settings);
});

after(async () => {
  await new Promise<void>(resolve => server.close(() => resolve()));
});

describe('DatasetsApi.importFile', () => {
  it('posts the file as it is, typed by its format, with the mapping as JSON in the query', async () => {
    seen = [];
    const version = { name: 'qa', version: 4, item_count: 2, message: 'import a.csv', created_by: 'u', created_at: '' };
    answer = { status: 201, body: JSON.stringify(version) };
    const csv = 'q,a\n2+2?,4\n';
    const written = await datasets.importFile('default', 'qa', new Blob([csv]), {
      format: 'csv',
      mode: 'replace',
      mapping: { input: ['q'], expected: 'a' },
      message: 'import a.csv'
    });
    assert.deepEqual(written, version);
    assert.equal(seen.length, 1);
    const url = new URL(seen[0].url, 'http://x');
    assert.equal(seen[0].method, 'POST');
    assert.equal(url.pathname, '/agiflow/api/v1/projects/default/datasets/qa/import');
    assert.equal(url.searchParams.get('format'), 'csv');
    assert.equal(url.searchParams.get('mode'), 'replace');
    assert.deepEqual(JSON.parse(url.searchParams.get('mapping') ?? ''), { input: ['q'], expected: 'a' });
    assert.equal(seen[0].contentType, 'text/csv');
    assert.equal(seen[0].body, csv);
  });

  it('sends JSONL as application/x-ndjson and leaves out a mapping not given', async () => {
    seen = [];
    answer = { status: 201, body: '{}' };
    await datasets.importFile('default', 'qa', new Blob(['{"input": {}}\n']), { format: 'jsonl', mode: 'append' });
    assert.equal(seen[0].contentType, 'application/x-ndjson');
    assert.equal(new URL(seen[0].url, 'http://x').searchParams.has('mapping'), false);
  });

  it("rejects a refused upload with the server's message and every refused row", async () => {
    const rows = [
      { row: 2, message: 'row has 1 fields; the header has 2' },
      { row: 5, field: 'id', message: "duplicate id 'a' (first used in row 1)" }
    ];
    answer = {
      status: 422,
      body: JSON.stringify({
        error: { code: 'validation_failed', message: '2 rows have errors; nothing was written', details: { rows } }
      })
    };
    const reason = await datasets.importFile('default', 'qa', new Blob(['x']), { format: 'csv', mode: 'append' }).then(
      () => null,
      (e: unknown) => e
    );
    assert.ok(reason instanceof AgiflowApiError);
    assert.equal(reason.status, 422);
    assert.equal(reason.message, '2 rows have errors; nothing was written');
    assert.deepEqual(rowErrors(reason), rows);
    assert.deepEqual(rowErrors(new Error('network')), []);
  });
});

describe('roles', () => {
  it('lets editors and owners edit content, only owners hand out access; a viewer neither', () => {
    assert.deepEqual(
      (['owner', 'editor', 'viewer', null] as const).map(r => [canEdit(r), isOwner(r)]),
      [
        [true, true],
        [true, false],
        [false, false],
        [false, false]
      ]
    );
  });
});
