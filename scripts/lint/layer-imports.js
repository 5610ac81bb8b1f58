// ESLint rule `mdp/layer-imports`: which modules a layer of the repo may import.
// A local rule rather than `no-restricted-imports` because it resolves relative imports to repo
// paths (so one config line holds for files at any depth), supports a true allow-list, and also
// sees dynamic `import()` and `export … from`.
import { isBuiltin } from 'node:module';
import { dirname, relative, resolve, sep } from 'node:path';

const REPO_ROOT = resolve(import.meta.dirname, '../..');

/**
 * The name an import is matched by: a repo file as `/dir/file.js` (resolved from the importing
 * file), a Node built-in as `node:name` (bare `fs` included), a package as written.
 */
export function importTarget(specifier, filename) {
  if (specifier.startsWith('.') || specifier.startsWith('/')) {
    return `/${relative(REPO_ROOT, resolve(dirname(filename), specifier)).replaceAll(sep, '/')}`;
  }
  if (isBuiltin(specifier)) return specifier.startsWith('node:') ? specifier : `node:${specifier}`;
  return specifier;
}

/** `*` is one path segment, `**` any depth; a package pattern also covers its subpaths (`pg` → `pg/lib/x`). */
function compile(pattern) {
  const escape = (text) => text.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  const segment = (part) => part.split('*').map(escape).join('[^/]*');
  const body = pattern.split('**').map(segment).join('.*');
  return new RegExp(pattern.startsWith('/') ? `^${body}$` : `^${body}(/.*)?$`);
}

const patternList = { type: 'array', items: { type: 'string' }, minItems: 1 };

/** @type {import('eslint').Rule.RuleModule} */
const layerImports = {
  meta: {
    type: 'problem',
    docs: { description: 'Enforce which modules a layer may import (allow-list and/or deny-list).' },
    schema: [
      {
        type: 'object',
        additionalProperties: false,
        required: ['layer'],
        properties: {
          layer: { type: 'string' },
          // Checked first: a matching import is an error unless it is type-only and the entry allows that.
          deny: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['patterns', 'reason'],
              properties: { patterns: patternList, reason: { type: 'string' }, allowTypeImports: { type: 'boolean' } },
            },
          },
          // When present the layer is allow-listed: an import that matches no entry is an error.
          allow: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['patterns'],
              properties: { patterns: patternList, typeOnly: { type: 'boolean' }, reason: { type: 'string' } },
            },
          },
          notAllowedReason: { type: 'string' },
        },
      },
    ],
    messages: {
      forbidden: "{{layer}} may not import '{{source}}': {{reason}}",
    },
  },
  create(context) {
    const options = context.options[0];
    const deny = (options.deny ?? []).map((d) => ({ ...d, re: d.patterns.map(compile) }));
    const allow = options.allow?.map((a) => ({ ...a, re: a.patterns.map(compile) }));
    const matches = (entry, target) => entry.re.some((re) => re.test(target));

    /** `typeOnly` only for imports the compiler erases: with verbatimModuleSyntax `import { type A }` still loads the module. */
    function check(node, source, typeOnly) {
      if (typeof source !== 'string') return;
      const target = importTarget(source, context.filename);
      const report = (reason) => context.report({ node, messageId: 'forbidden', data: { layer: options.layer, source, reason } });
      const denied = deny.find((d) => matches(d, target));
      if (denied && !(denied.allowTypeImports && typeOnly)) return report(denied.reason);
      if (!allow) return;
      const allowed = allow.find((a) => matches(a, target));
      if (!allowed) return report(options.notAllowedReason ?? 'not on the allow-list');
      if (allowed.typeOnly && !typeOnly) {
        const inline = node.type === 'ImportDeclaration' && node.specifiers.length > 0 && node.specifiers.every((s) => s.importKind === 'type');
        const hint = inline ? ' (`import { type X }` still loads the module under verbatimModuleSyntax; write `import type { X }`)' : '';
        return report(`${allowed.reason ?? 'only `import type` is allowed from here'}${hint}`);
      }
    }

    const literal = (node) =>
      node?.type === 'Literal' ? node.value : node?.type === 'TemplateLiteral' && node.expressions.length === 0 ? node.quasis[0].value.cooked : undefined;

    return {
      ImportDeclaration: (node) => check(node, node.source.value, node.importKind === 'type'),
      ExportNamedDeclaration: (node) => node.source && check(node, node.source.value, node.exportKind === 'type'),
      ExportAllDeclaration: (node) => check(node, node.source.value, node.exportKind === 'type'),
      ImportExpression: (node) => check(node, literal(node.source), false),
      TSImportEqualsDeclaration: (node) =>
        node.moduleReference.type === 'TSExternalModuleReference' && check(node, literal(node.moduleReference.expression), node.importKind === 'type'),
      // `typeof import('x')` in a type position.
      TSImportType: (node) => check(node, literal(node.argument?.type === 'TSLiteralType' ? node.argument.literal : node.argument), true),
    };
  },
};

export default { meta: { name: 'mdp' }, rules: { 'layer-imports': layerImports } };
