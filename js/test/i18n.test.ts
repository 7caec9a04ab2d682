/**
 * The extension's strings go through JupyterLab's translation bundle (`trans.__`); without a
 * translator (here, and before JupyterLab hands one over) they are English with `%1`, `%2` filled in.
 * The Chinese catalog is checked by tests/test_translations.py (every message translated) and in
 * JupyterLab itself by tests/test_translations.py's browser test.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';

import type { ITranslator, TranslationBundle } from '@jupyterlab/translation';

import { DOMAIN, isChinese, listText, roleLabel, setTranslator, statusLabel, trans } from '../src/i18n';
import { IEndpoint, serveMessage, statusText } from '../src/model';

const ENDPOINT: IEndpoint = {
  kernel_id: 'k',
  commands: ['shout', 'style'],
  url: '/algolink/kernels/k/',
  notebook: null
};

afterEach(() => setTranslator(null));

/** A translator in another language whose bundle marks each message, to see which ones pass through it. */
function marking(languageCode: string, domains: string[]): ITranslator {
  const bundle = {
    __: (msgid: string, ...args: unknown[]) => `«${msgid}»${args.length ? '/' + args.join('/') : ''}`,
    _n: (msgid: string) => `«${msgid}»`,
    _p: (ctx: string, msgid: string) => `«${msgid}»`
  } as unknown as TranslationBundle;
  return {
    languageCode,
    load: (domain: string) => {
      domains.push(domain);
      return bundle;
    }
  } as ITranslator;
}

test('isChinese: zh codes are Chinese, the rest not', () => {
  for (const code of ['zh', 'zh-CN', 'zh_CN', 'ZH-cn']) {
    assert.ok(isChinese(code), code);
  }
  for (const code of ['en', 'en-US', 'fr_FR', '', null, 'zhx']) {
    assert.ok(!isChinese(code), String(code));
  }
});

test('without a translator: English with the placeholders filled, missing ones left visible', () => {
  assert.equal(trans.__('version %1', 3), 'version 3');
  assert.equal(trans.__('%1 (kernel %2)', 'a.ipynb'), 'a.ipynb (kernel %2)');
  assert.equal(statusText(ENDPOINT), 'AlgoLink: 2 commands');
  assert.equal(listText(['a', 'b']), 'a, b');
});

test("the extension's messages go through JupyterLab's bundle for its domain", () => {
  const domains: string[] = [];
  setTranslator(marking('zh_CN', domains));
  assert.deepEqual(domains, [DOMAIN]);
  assert.equal(statusText(undefined), '«AlgoLink: not serving»');
  assert.equal(statusLabel('online'), '«Online»');
  assert.equal(roleLabel('owner'), '«owner»');
  assert.ok(serveMessage(ENDPOINT).startsWith('«'));
  assert.equal(listText(['a', 'b']), 'a、b');
});

test('statusLabel uses the hub pages words and keeps an unknown status as it is', () => {
  assert.equal(statusLabel('online'), 'Online');
  assert.equal(statusLabel('building'), 'Building');
  assert.equal(statusLabel('teleporting'), 'teleporting');
});
