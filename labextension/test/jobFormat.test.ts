import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { duration, jobTitle, parameterSummary } from '../src/jobFormat';
import { snippetFor } from '../src/promptsApi';
import type { PromptVersion } from '../src/types';
import { job } from './fixtures';

describe('a job row says what the job is', () => {
  it('an evaluation run by its name, any other job by its notebook', () => {
    assert.equal(
      jobTitle(job({ notebook: 'builtin:evaluate', run_id: 'abcdef0123', run_name: 'qa v2' })),
      'Evaluation: qa v2'
    );
    assert.equal(
      jobTitle(job({ notebook: 'builtin:evaluate', run_id: 'abcdef0123', run_name: '' })),
      'Evaluation: abcdef01'
    );
    assert.equal(jobTitle(job({ notebook: 'reports/weekly.ipynb' })), 'reports/weekly.ipynb');
  });

  it('parameters as key=value, cut to fit', () => {
    assert.equal(parameterSummary({ name: 'world', n: 3 }), 'name="world", n=3');
    const long = parameterSummary({ text: 'x'.repeat(200) }, 20);
    assert.equal(long.length, 20);
    assert.ok(long.endsWith('…'));
  });

  it('run time: nothing before the start, running while it runs, took once finished', () => {
    const start = '2026-03-01T12:00:00.000000Z';
    assert.equal(duration(job({ started_at: null }), Date.parse(start)), '');
    assert.equal(duration(job({ started_at: start }), Date.parse(start) + 2500), 'running 2.5 s');
    assert.equal(
      duration(job({ started_at: start, finished_at: '2026-03-01T12:01:30.000000Z' }), 0),
      'took 1 min 30 s'
    );
  });
});

describe('the prompt snippet fetches exactly the version shown', () => {
  const version = (n: number, labels: string[]): PromptVersion =>
    ({ name: 'qa', version: n, labels }) as unknown as PromptVersion;

  it('by production when it carries it, else by another label, else by number', () => {
    assert.equal(
      snippetFor('qa', version(3, ['staging', 'production'])),
      'client.prompts.get("qa", label="production")'
    );
    assert.equal(snippetFor('qa', version(2, ['staging'])), 'client.prompts.get("qa", label="staging")');
    assert.equal(snippetFor('qa', version(1, [])), 'client.prompts.get("qa", version=1)');
  });
});
