'use strict';

// Facts both Rust and JavaScript know, kept in step by this test: it parses
// the Rust source (src/**/*.rs) and fails when lib/, index.d.ts, the README
// or docs/ disagree with it. The Rust definitions are the source of truth;
// JavaScript adds codes of its own (the plugin's, the loader's), which must
// be raised somewhere in lib/.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { codes } = require('../lib/core/errors');
const limits = require('../lib/core/limits');

const ROOT = path.join(__dirname, '..');

function filesUnder(dir, ext) {
  const out = [];
  for (const entry of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(rel, ext));
    else if (entry.name.endsWith(ext)) out.push(rel);
  }
  return out.sort();
}

const read = (rel) => fs.readFileSync(path.join(ROOT, rel), 'utf8');
const RUST = filesUnder('src', '.rs').map((rel) => ({ rel, text: read(rel) }));
const CODE_RE = /ERR_FIELDCRYPT_[A-Z0-9_]+/g;
const codesIn = (text) => new Set(text.match(CODE_RE) || []);

/** Every `const NAME: usize = expr;` of the Rust source, evaluated (`+ - * / << ( )`, `_` in numbers, other such constants). */
function rustConstants() {
  const exprs = new Map();
  for (const { rel, text } of RUST) {
    for (const m of text.matchAll(/\bconst ([A-Z][A-Z0-9_]*): usize = ([^;]+);/g)) {
      assert.ok(
        !exprs.has(m[1]) || exprs.get(m[1]).expr === m[2].trim(),
        `${m[1]} is defined twice with different values`,
      );
      exprs.set(m[1], { expr: m[2].trim(), rel });
    }
  }
  const values = new Map();
  const evaluate = (name, seen = new Set()) => {
    if (values.has(name)) return values.get(name);
    assert.ok(!seen.has(name), `${name} refers to itself`);
    seen.add(name);
    const { expr } = exprs.get(name);
    const js = expr.replace(/[A-Z][A-Z0-9_]*/g, (ref) => {
      assert.ok(exprs.has(ref), `${name} = ${expr}: ${ref} is not a usize constant of src/`);
      return `(${evaluate(ref, seen)})`;
    });
    assert.match(js, /^[0-9_\s+\-*/()<]+$/, `${name} = ${expr} is not simple arithmetic`);
    const value = Function(`"use strict"; return (${js.replace(/(\d)_(?=\d)/g, '$1')});`)();
    values.set(name, value);
    return value;
  };
  return { has: (name) => exprs.has(name), value: (name) => evaluate(name), where: (name) => exprs.get(name).rel };
}

test('every error code the addon raises is in errorCodes, under its own name', () => {
  const rust = new Set();
  for (const { text } of RUST) for (const code of codesIn(text)) rust.add(code);
  assert.ok(
    rust.has('ERR_FIELDCRYPT_AUTH_FAILED') && rust.has('ERR_FIELDCRYPT_INTERNAL'),
    'the Rust source was parsed',
  );
  const js = new Set(Object.values(codes));
  for (const code of rust) assert.ok(js.has(code), `${code} (raised by src/) is missing from lib/core/errors.js`);
  for (const [name, code] of Object.entries(codes)) assert.equal(code, `ERR_FIELDCRYPT_${name}`);
});

test('every code of errorCodes is raised somewhere', () => {
  const rust = RUST.map((f) => f.text).join('\n');
  const lib = filesUnder('lib', '.js')
    .filter((rel) => rel !== path.join('lib', 'core', 'errors.js'))
    .map(read)
    .join('\n');
  for (const [name, code] of Object.entries(codes)) {
    const raised = rust.includes(`"${code}"`) || lib.includes(`codes.${name}`);
    assert.ok(raised, `${code} is neither raised by src/ nor used as codes.${name} in lib/`);
  }
});

test('index.d.ts lists exactly the codes of errorCodes, in the union and in errorCodes', () => {
  const dts = read('index.d.ts');
  const union = /export type FieldCryptErrorCode =([^;]+);/.exec(dts);
  assert.ok(union, 'index.d.ts declares FieldCryptErrorCode');
  assert.deepEqual([...codesIn(union[1])].sort(), Object.values(codes).sort());
  const object = /export const errorCodes: \{([^}]+)\}/.exec(dts);
  assert.ok(object, 'index.d.ts declares errorCodes');
  const entries = [...object[1].matchAll(/readonly ([A-Z0-9_]+): '([A-Z0-9_]+)';/g)].map((m) => [m[1], m[2]]);
  assert.deepEqual(Object.fromEntries(entries), { ...codes });
});

test("the README's error table lists exactly the codes of errorCodes; no document names another code", () => {
  const readme = read('README.md');
  const table = [...readme.matchAll(/^\| `(ERR_FIELDCRYPT_[A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual([...table].sort(), Object.values(codes).sort(), 'README.md, "Errors" table');
  const known = new Set(Object.values(codes));
  for (const rel of ['README.md', ...filesUnder('docs', '.md')]) {
    for (const code of codesIn(read(rel))) assert.ok(known.has(code), `${rel} names ${code}, which is not a code`);
  }
});

test('lib/core/limits.js agrees with the Rust constants', () => {
  const rust = rustConstants();
  const mirrors = {
    STORED_HEADER: 'HEADER_LEN',
    SINGLE_EXTERNAL_STORED: 'EXTERNAL_MIN',
    SINGLE_EXTERNAL_TEXT: 'TEXT_EXTERNAL_MIN',
  };
  for (const [js, rs] of Object.entries(mirrors)) {
    assert.ok(rust.has(rs), `src/ defines ${rs}`);
    assert.equal(limits[js], rust.value(rs), `lib/core/limits.js ${js} vs ${rust.where(rs)} ${rs}`);
  }
});

test("the invalid-format message of JavaScript's checks is the addon's", () => {
  const source = RUST.find((f) => f.rel === path.join('src', 'error.rs')).text;
  const m = /#\[error\(\s*"((?:[^"\\]|\\[\s\S])*)"\s*\)\]\s*InvalidFormat,/.exec(source);
  assert.ok(m, 'src/error.rs has the InvalidFormat message');
  const rustMessage = m[1].replace(/\\\n\s*/g, '');
  const { invalidFormat } = require('../lib/core/errors');
  assert.equal(invalidFormat(42).message, `${rustMessage}; got a number`);
});
