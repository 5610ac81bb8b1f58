/**
 * No tracked file carries an unresolved merge: a conflict left in the README once went unnoticed,
 * since neither prettier nor the compiler reads Markdown for it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { REPO_ROOT } from '../helpers/services.js';

const MARKER = /^(<{7}|>{7})( |$)/;

describe('tracked files', function () {
  it('hold no merge conflict markers', function () {
    const files = execFileSync('git', ['-C', REPO_ROOT, 'ls-files', '-z'], { encoding: 'utf8' }).split('\0').filter(Boolean);
    const found: string[] = [];
    for (const file of files) {
      if (!/\.(md|ts|js|mjs|sh|ya?ml|json|py|sql|txt)$/.test(file)) continue;
      let text: string;
      try {
        text = readFileSync(resolve(REPO_ROOT, file), 'utf8');
      } catch {
        continue; // deleted in the work tree
      }
      text.split('\n').forEach((line, i) => {
        if (MARKER.test(line)) found.push(`${file}:${i + 1}: ${line.slice(0, 40)}`);
      });
    }
    assert.deepEqual(found, []);
  });
});
