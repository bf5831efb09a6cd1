// ESLint flat config. TypeScript (src/, test/) is linted type-aware through the project
// service (tsconfig.json); plain JavaScript (bench/, scripts/, .ci/, this file) gets the JS
// rules only. Formatting is Prettier's job: eslint-config-prettier, last, turns off every
// stylistic rule that could disagree with it.
import js from '@eslint/js'
import prettier from 'eslint-config-prettier'
import { defineConfig } from 'eslint/config'
import globals from 'globals'
import tseslint from 'typescript-eslint'

/** Unused bindings are errors, unless named `_…` on purpose (a required but unused parameter). */
const unusedVars = {
  args: 'after-used',
  argsIgnorePattern: '^_',
  varsIgnorePattern: '^_',
  caughtErrorsIgnorePattern: '^_',
  destructuredArrayIgnorePattern: '^_',
  ignoreRestSiblings: true,
}

export default defineConfig(
  { ignores: ['node_modules/', 'dist/', '.venv/', '.tap/', 'coverage/', 'bench/results/', 'test/artifacts/', 'test/fixtures/'] },

  // Every file: the JS rules that catch bugs, plus a few habits the style guide asks for.
  {
    files: ['**/*.{ts,mjs,js}'],
    extends: [js.configs.recommended],
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      eqeqeq: ['error', 'always'],
      'no-unused-vars': ['error', unusedVars],
      'prefer-const': 'error',
      'no-var': 'error',
      'object-shorthand': ['error', 'properties'],
      'no-throw-literal': 'error',
      'no-return-await': 'off', // superseded by @typescript-eslint/return-await below, and harmless in JS
      // pino's `err` serializer keeps an error's type, stack, code and cause; a message alone loses them.
      'no-restricted-syntax': [
        'error',
        {
          selector: "Property[key.name='err'] > MemberExpression[property.name='message']",
          message: 'Log the error itself, { err: error }, so pino serializes its stack, code and cause.',
        },
        {
          selector: "Property[key.name='err'] > ObjectExpression",
          message: 'Log the error itself, { err: error }, so pino serializes its stack, code and cause.',
        },
      ],
    },
  },

  // TypeScript: type-aware recommended set, then the deliberate exceptions.
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      'no-unused-vars': 'off', // the TypeScript-aware version below understands types and overloads
      '@typescript-eslint/no-unused-vars': ['error', unusedVars],
      'no-throw-literal': 'off',
      '@typescript-eslint/only-throw-error': 'error',

      // Real bugs, stated explicitly even where the preset already has them.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'separate-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/consistent-type-exports': 'error',
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',

      // Templates build log lines and page text from numbers and booleans all the time.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },

  // The live page's browser modules: typed by their own project (DOM lib, no Node types).
  {
    files: ['src/page/app/**/*.ts'],
    languageOptions: {
      globals: { ...globals.browser },
      parserOptions: { projectService: false, project: './tsconfig.page.json', tsconfigRootDir: import.meta.dirname },
    },
  },

  // Tests: tap queues a `t.test(...)` subtest and waits for it itself.
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: '@tapjs/test', name: 'test' }] },
      ],
      // tap subtests are written `async t => {}` throughout, awaiting or not, so each can grow an await.
      '@typescript-eslint/require-await': 'off',
    },
  },

  // Declaration shims for untyped packages.
  {
    files: ['**/*.d.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },

  // JavaScript: no type information, so no type-aware rules.
  {
    files: ['**/*.{mjs,js}'],
    extends: [tseslint.configs.disableTypeChecked],
  },

  prettier,

  // After eslint-config-prettier, which turns it off: prettier wraps code at 140 but never a
  // string, template or comment, and those are left to a person. A warning, so it never blocks.
  {
    files: ['**/*.{ts,mjs,js}'],
    rules: { 'max-len': ['warn', { code: 140, ignoreUrls: true, ignoreRegExpLiterals: true }] },
  },
)
