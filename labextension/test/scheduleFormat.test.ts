import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { AgiflowApiError } from '../src/api';
import {
  durationText,
  fieldErrors,
  fireTime,
  firingText,
  gateText,
  formField,
  relativeTime,
  targetText,
  timingText
} from '../src/scheduleFormat';
import type { Schedule } from '../src/schedulesApi';

const job = { notebook: 'builtin:hello', parameters: {} };
const run: NonNullable<Schedule['eval']> = {
  prompt: { name: 'qa', label: 'production' },
  dataset: { name: 'qa-set' },
  model: { connection: 'echo' },
  evaluators: [{ type: 'exact_match' }]
};

describe('a schedule row says when it fires and what it runs', () => {
  it('durations in whole units, largest first', () => {
    assert.equal(durationText(0), '0 s');
    assert.equal(durationText(45), '45 s');
    assert.equal(durationText(90), '1 min 30 s');
    assert.equal(durationText(3600), '1 h');
    assert.equal(durationText(86_400 + 120), '1 d 2 min');
  });

  it('an interval as "every …", a cron expression with its time zone', () => {
    assert.equal(timingText({ cron: null, timezone: 'UTC', interval_seconds: 300 }), 'every 5 min');
    assert.equal(
      timingText({ cron: '0 3 * * *', timezone: 'Europe/Berlin', interval_seconds: null }),
      'cron 0 3 * * * (Europe/Berlin)'
    );
  });

  it('a job by its notebook; a run by prompt (label or version), dataset and connection', () => {
    assert.equal(targetText({ target: 'job', job, eval: null }), 'Notebook job: builtin:hello');
    assert.equal(
      targetText({ target: 'eval', job: null, eval: run }),
      'Evaluation run: qa@production × qa-set (latest) on echo'
    );
    assert.equal(
      targetText({
        target: 'eval',
        job: null,
        eval: { ...run, prompt: { name: 'qa', version: 3 }, dataset: { name: 'qa-set', version: 2 } }
      }),
      'Evaluation run: qa v3 × qa-set v2 on echo'
    );
  });

  it("an evaluation schedule's pass-rate gate as a percentage; none without one", () => {
    assert.equal(gateText(0.8), 'announced below 80% pass rate');
    assert.equal(gateText(0.955), 'announced below 95.5% pass rate');
    assert.equal(gateText(null), '');
  });

  it('fire times to the second; relative to now', () => {
    const at = new Date(2026, 10, 30, 9, 5, 7).toISOString();
    assert.equal(fireTime(at), '2026-11-30 09:05:07');
    assert.equal(fireTime(null), '');
    const now = Date.parse(at);
    assert.equal(relativeTime(at, now), 'now');
    assert.equal(relativeTime(new Date(now + 125_000).toISOString(), now), 'in 2 min 5 s');
    assert.equal(relativeTime(new Date(now - 12_000).toISOString(), now), '12 s ago');
  });

  it('a firing: manual or a tick, its outcome and why', () => {
    assert.equal(firingText({ manual: true, outcome: 'started', reason: null }), 'run now: started');
    assert.equal(
      firingText({ manual: false, outcome: 'skipped', reason: 'the previous firing still runs' }),
      'tick: skipped (the previous firing still runs)'
    );
  });
});

describe("a refused save's messages go next to their fields", () => {
  const refused = (details: unknown, message = 'refused'): AgiflowApiError =>
    new AgiflowApiError(message, 'validation_failed', 422, details);

  it('API field paths map to form fields', () => {
    assert.equal(formField('cron'), 'cron');
    assert.equal(formField('interval_seconds'), 'interval_seconds');
    assert.equal(formField('pass_rate_gate'), 'pass_rate_gate');
    assert.equal(formField('job.notebook'), 'notebook');
    assert.equal(formField('job.parameters.n'), 'parameters');
    assert.equal(formField('job.bogus'), 'notebook');
    assert.equal(formField('job'), 'target');
    assert.equal(formField('eval.prompt.name'), 'eval');
    assert.equal(formField('surprise'), null);
    assert.equal(formField('body'), null);
  });

  it("pydantic's errors, the first per field, without the 'Value error, ' prefix", () => {
    const errors = fieldErrors(
      refused({
        errors: [
          { field: 'cron', message: 'Value error, not a valid cron expression', type: 'value_error' },
          { field: 'cron', message: 'second', type: 'value_error' },
          { field: 'timezone', message: "Value error, unknown time zone 'Mars'", type: 'value_error' },
          { field: 'surprise', message: 'Extra inputs are not permitted', type: 'extra_forbidden' }
        ]
      })
    );
    assert.deepEqual(errors, { cron: 'not a valid cron expression', timezone: "unknown time zone 'Mars'" });
  });

  it('a refusal naming one field (a name taken, an unreadable notebook) carries its message', () => {
    assert.deepEqual(fieldErrors(refused({ field: 'name' }, "a schedule named 'x' exists")), {
      name: "a schedule named 'x' exists"
    });
    assert.deepEqual(fieldErrors(refused({ field: 'job.notebook' }, 'cannot be read')), { notebook: 'cannot be read' });
  });

  it('anything else names no field', () => {
    assert.deepEqual(fieldErrors(new Error('boom')), {});
    assert.deepEqual(fieldErrors(refused(undefined)), {});
    assert.deepEqual(fieldErrors(refused({ errors: 'nonsense' })), {});
  });
});
