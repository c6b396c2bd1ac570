// Type-aware lint of harness/, bench/ (test files included) and scripts/: tsconfig.test.json covers them all.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'results/', '.tap/', 'bin/', 'eslint.config.js'] },
  {
    files: ['harness/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.js'],
    // recommendedTypeChecked brings no-explicit-any, the no-unsafe-* family, no-floating-promises,
    // no-misused-promises, await-thenable, only-throw-error, unbound-method, ...
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {
        project: './tsconfig.test.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // tap queues the subtests t.test() starts, runs them in order and reports their failures;
          // the promise it returns is only there for a test that wants to wait on one.
          allowForKnownSafeCalls: [{ from: 'package', package: '@tapjs/test', name: 'test' }],
        },
      ],
      // `const { a, ...rest } = o` is how a property is left out of a copy.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
      // Off: tap subtest callbacks and implementations of Promise-returning interfaces are async
      // with no await by design (a throw then rejects instead of escaping synchronously).
      '@typescript-eslint/require-await': 'off',
    },
  },
);
