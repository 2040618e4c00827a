'use strict';

/**
 * Dotted paths over plain documents (raw driver documents, lean results,
 * update payloads): shared by the Mongoose plugin and the CLI.
 *
 * A path segment that meets an array applies to every element, at any depth:
 * `personExtended.identifications.idNumber` reaches the idNumber of each
 * identification, and `tags` reaches each element of an array of strings.
 * The segment `$*` (Mongoose's name for "every value of a Map") reaches every
 * value of an object or Map. Missing, null and undefined values are not
 * visited: there is nothing to encrypt there.
 */

const cache = new Map();

/** Splits a dotted path once, with a small cache (paths come from schemas). */
function splitPath(path) {
  let parts = cache.get(path);
  if (parts === undefined) {
    parts = path.split('.');
    if (cache.size < 10000) cache.set(path, parts);
  }
  return parts;
}

function isPlainContainer(value) {
  return value !== null && typeof value === 'object';
}

/**
 * Calls `visit(value, set, where)` for every non-null value at `path` in
 * `doc`. `set(newValue)` replaces that value in place; `where` is the
 * concrete path (with array indexes), for messages.
 */
function forEachAtPath(doc, path, visit) {
  walk(doc, splitPath(path), 0, '', visit);
}

function walk(node, parts, i, where, visit) {
  if (!isPlainContainer(node)) return;
  if (Array.isArray(node)) {
    for (let k = 0; k < node.length; k++) {
      const el = node[k];
      const at = `${where}.${k}`;
      if (i === parts.length) {
        if (el !== null && el !== undefined)
          visit(
            el,
            (v) => {
              node[k] = v;
            },
            at,
          );
      } else {
        walk(el, parts, i, at, visit);
      }
    }
    return;
  }
  if (i === parts.length) return;
  const part = parts[i];
  const keys = part === '$*' ? (node instanceof Map ? [...node.keys()] : Object.keys(node)) : [part];
  for (const key of keys) {
    const value = node instanceof Map ? node.get(key) : node[key];
    if (value === null || value === undefined) continue;
    const at = where ? `${where}.${key}` : key;
    if (i + 1 === parts.length) {
      if (Array.isArray(value)) {
        walk(value, parts, i + 1, at, visit);
      } else {
        const set =
          node instanceof Map
            ? (v) => node.set(key, v)
            : (v) => {
                node[key] = v;
              };
        visit(value, set, at);
      }
    } else {
      walk(value, parts, i + 1, at, visit);
    }
  }
}

/** Every non-null value at `path` in `doc`, in document order. */
function valuesAtPath(doc, path) {
  const out = [];
  forEachAtPath(doc, path, (v) => out.push(v));
  return out;
}

module.exports = { splitPath, forEachAtPath, valuesAtPath };
