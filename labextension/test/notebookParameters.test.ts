import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseValue, readParameters } from '../src/notebookParameters';

describe("a notebook's parameters cell", () => {
  it('gives each top-level assignment with its default and comment', () => {
    const notebook = {
      cells: [
        { cell_type: 'markdown', metadata: { tags: ['parameters'] }, source: 'x = 1' },
        {
          cell_type: 'code',
          metadata: { tags: ['parameters'] },
          source: [
            'name = "world"  # who to greet\n',
            'n: int = 3\n',
            'if n:\n',
            '    hidden = 1\n',
            'flags = [True, None]'
          ]
        }
      ]
    };
    assert.deepEqual(readParameters(notebook), [
      { name: 'name', text: '"world"', comment: 'who to greet' },
      { name: 'n', text: '3', comment: '' },
      { name: 'flags', text: '[True, None]', comment: '' }
    ]);
  });

  it('is empty without a tagged code cell', () => {
    assert.deepEqual(readParameters({ cells: [{ cell_type: 'code', metadata: {}, source: 'a = 1' }] }), []);
    assert.deepEqual(readParameters({}), []);
  });
});

describe('a typed value', () => {
  it('is read as a Python literal', () => {
    assert.equal(parseValue('3'), 3);
    assert.equal(parseValue('0.5'), 0.5);
    assert.equal(parseValue("'it''s'"), "'it''s'"); // not one literal: kept as typed
    assert.equal(parseValue("'world'"), 'world');
    assert.equal(parseValue('"world"'), 'world');
    assert.equal(parseValue('True'), true);
    assert.equal(parseValue('None'), null);
    assert.deepEqual(parseValue("{'a': [1, False], \"b\": 'x'}"), { a: [1, false], b: 'x' });
  });

  it('is a plain string when it is no literal', () => {
    assert.equal(parseValue('hello world'), 'hello world');
    assert.equal(parseValue('[1, 2'), '[1, 2');
  });
});
