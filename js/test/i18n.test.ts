/**
 * The extension's strings in English and 简体中文.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';

import { languageOf, MESSAGE_IDS, setLanguage, statusLabel, t } from '../src/i18n';
import { IEndpoint, serveMessage, statusText } from '../src/model';

const ENDPOINT: IEndpoint = {
  kernel_id: 'k',
  commands: ['shout', 'style'],
  url: '/algolink/kernels/k/',
  notebook: null
};

afterEach(() => setLanguage('en'));

test('languageOf: zh codes are Chinese, the rest English', () => {
  for (const code of ['zh', 'zh-CN', 'zh_CN', 'ZH-cn']) {
    assert.equal(languageOf(code), 'zh', code);
  }
  for (const code of ['en', 'en-US', 'fr_FR', '', null, undefined, 'zhx']) {
    assert.equal(languageOf(code), 'en', String(code));
  }
});

test('every message has both languages, different, with the same placeholders', () => {
  const placeholders = (s: string) => (s.match(/\{\d+\}/g) ?? []).sort().join(',');
  for (const id of MESSAGE_IDS) {
    const en = t(id, [], 'en');
    const zh = t(id, [], 'zh');
    assert.ok(en.trim() && zh.trim(), id);
    assert.equal(placeholders(en), placeholders(zh), id);
    if (id !== 'api') {
      assert.notEqual(en, zh, `${id} is not translated`);
      assert.match(zh, /[\u4e00-\u9fff]/, `${id} has no Chinese`);
    }
  }
});

test('t fills the placeholders and leaves missing ones visible', () => {
  assert.equal(t('version', [3], 'en'), 'version 3');
  assert.equal(t('version', [3], 'zh'), '版本 3');
  assert.equal(t('kernel-of', ['a.ipynb'], 'en'), 'a.ipynb (kernel {1})');
});

test('the status bar and the serve message follow the language', () => {
  setLanguage('zh');
  assert.equal(statusText(ENDPOINT), 'AlgoLink：2 个命令');
  assert.equal(statusText(undefined), 'AlgoLink：未在服务');
  assert.equal(serveMessage(ENDPOINT), '正在提供 2 个命令（shout, style）：URL 和 curl 命令见 AlgoLink 面板。');
  setLanguage('en');
  assert.equal(statusText(ENDPOINT), 'AlgoLink: 2 commands');
});

test('statusLabel uses the hub pages words and keeps an unknown status as it is', () => {
  assert.equal(statusLabel('online', 'en'), 'Online');
  assert.equal(statusLabel('online', 'zh'), '已上线');
  assert.equal(statusLabel('building', 'zh'), '构建中');
  assert.equal(statusLabel('teleporting', 'zh'), 'teleporting');
});
