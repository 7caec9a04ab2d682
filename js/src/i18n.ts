/**
 * The extension's strings go through JupyterLab's translation mechanism: `trans.__('English %1', x)`
 * (`trans._n`, `trans._p`) with the `algolink_jupyter` domain. Babel extracts them with the hub's
 * strings (`python scripts/i18n.py update`); the build compiles each language's catalog to the JSON
 * that JupyterLab's translation server finds through the package's `jupyterlab.locale` entry point
 * (`algolink_jupyter/locale/<lang>/LC_MESSAGES/algolink_jupyter.json`). JupyterLab serves it only in a
 * language whose language pack is installed and chosen (Settings > Language): for Chinese,
 * `pip install jupyterlab-language-pack-zh-CN`.
 */
import type { ITranslator, TranslationBundle } from '@jupyterlab/translation';

/** The gettext domain (JupyterLab's name for the catalog: the entry point's name). */
export const DOMAIN = 'algolink_jupyter';

/** What the extension uses of a JupyterLab translation bundle. */
export type Bundle = Pick<TranslationBundle, '__' | '_n' | '_p'>;

/** `%1`, `%2`... filled in, as JupyterLab's bundles do. */
function format(text: string, args: unknown[]): string {
  return text.replace(/%(\d+)/g, (whole, i) =>
    Number(i) >= 1 && Number(i) <= args.length ? String(args[Number(i) - 1]) : whole
  );
}

/** English, until JupyterLab's translator arrives (and in unit tests, which run without it). */
const english: Bundle = {
  __: (msgid: string, ...args: unknown[]) => format(msgid, args),
  _n: (msgid: string, msgidPlural: string, n: number, ...args: unknown[]) =>
    format(n === 1 ? msgid : msgidPlural, [n, ...args]),
  _p: (msgctxt: string, msgid: string, ...args: unknown[]) => format(msgid, args)
};

/** The extension's translation bundle: `trans.__('…')`. */
export let trans: Bundle = english;
let languageCode = 'en';

/** Use JupyterLab's translator (its language is JupyterLab's: Settings > Language). */
export function setTranslator(translator: ITranslator | null): void {
  trans = translator ? translator.load(DOMAIN) : english;
  languageCode = translator?.languageCode ?? 'en';
}

/** JupyterLab's language code (`en`, `zh-CN`). */
export function language(): string {
  return languageCode;
}

/** Whether JupyterLab's language is Chinese (`zh`, `zh-CN`, `zh_CN`). */
export function isChinese(code: string | null | undefined = languageCode): boolean {
  return !!code && /^zh([-_]|$)/i.test(code);
}

/** Joins names as a list in the current language: "a, b" or "a、b". */
export function listText(items: string[]): string {
  return items.join(isChinese() ? '、' : ', ');
}

/** The label of a project role (viewer, developer, owner); an unknown one as it is. */
export function roleLabel(role: string): string {
  switch (role) {
    case 'viewer':
      return trans.__('viewer');
    case 'developer':
      return trans.__('developer');
    case 'owner':
      return trans.__('owner');
    default:
      return role;
  }
}

/** The label of a hub service status, in the hub pages' words; an unknown one as it is. */
export function statusLabel(status: string): string {
  switch (status) {
    case 'registered':
      return trans.__('Registered');
    case 'building':
      return trans.__('Building');
    case 'starting':
      return trans.__('Starting');
    case 'online':
      return trans.__('Online');
    case 'failed':
      return trans.__('Failed');
    case 'offline':
      return trans.__('Offline');
    default:
      return status;
  }
}
