/**
 * Layering rules (docs: GUIDE "Data flows one way"): lib knows nothing of operators or pipelines,
 * operators know nothing of pipelines, and no module takes part in an import cycle.
 * Run with `npm run lint:deps`.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'lib-not-to-operators-or-pipelines',
      comment: 'lib/ is the core: it must not import operators/ or pipelines/.',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^(operators|pipelines)/' },
    },
    {
      name: 'operators-not-to-pipelines',
      comment: 'operators/ compose lib/; pipelines/ compose operators/, never the other way.',
      severity: 'error',
      from: { path: '^operators/' },
      to: { path: '^pipelines/' },
    },
    {
      name: 'no-circular',
      comment: 'An import cycle is a design bug (type-only imports included).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that does not resolve to a file (a typo, or a missing dependency).',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/' },
    // Type-only imports count: a cycle through `import type` still ties the modules together.
    tsPreCompilationDeps: true,
    // The code imports with `.ts` specifiers (allowImportingTsExtensions); resolve through tsconfig.
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['rxrl-source', 'import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.mts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
  },
};
