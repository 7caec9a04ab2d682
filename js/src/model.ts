/**
 * The DOM-free part of the AlgoLink panel: what the server extension answers, checked; the curl line of a
 * command; the status-bar text. Unit-tested with node's own test runner (see ../test/).
 */

import { t } from './i18n';

/** One serving kernel, as `GET <base>algolink/api/endpoints` lists it. */
export interface IEndpoint {
  /** The kernel's id. */
  kernel_id: string;
  /** The names of the commands the kernel serves. */
  commands: string[];
  /** The Jupyter-authenticated proxy URL of the kernel's server: `<base>algolink/kernels/<id>/`. */
  url: string;
  /** The path of the notebook the kernel runs, when Jupyter knows it. */
  notebook: string | null;
}

/** One service of the hub, as `GET <base>algolink/api/hub/services` lists it. */
export interface IHubService {
  project: string;
  name: string;
  group: string | null;
  status: string;
  published_version: number | null;
  /** The service's page on the hub. */
  page_url: string;
  /** The published API, while the service is online. */
  api_url: string | null;
}

/** The hub section's state. */
export type HubState =
  | { kind: 'services'; hubUrl: string; services: IHubService[] }
  | { kind: 'unconfigured'; message: string }
  | { kind: 'error'; message: string };

/** An input of a command, as the model server's `GET /<command>` describes it. */
export interface IInputSpec {
  name: string;
  type: string;
  default?: unknown;
  /** A category's choices (`oneOf` in the spec). */
  oneOf?: unknown[];
  min?: number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** The endpoints in an answer of the server extension; anything malformed is left out. */
export function parseEndpoints(payload: unknown): IEndpoint[] {
  if (!Array.isArray(payload)) {
    return [];
  }
  const endpoints: IEndpoint[] = [];
  for (const item of payload) {
    if (!isObject(item) || typeof item.kernel_id !== 'string' || typeof item.url !== 'string') {
      continue;
    }
    const commands = Array.isArray(item.commands)
      ? item.commands.filter((c): c is string => typeof c === 'string')
      : [];
    endpoints.push({
      kernel_id: item.kernel_id,
      commands,
      url: item.url,
      notebook: stringOrNull(item.notebook)
    });
  }
  return endpoints;
}

/** The hub section's state from an answer (and its HTTP status) of the hub route. */
export function parseHubState(payload: unknown, status = 200): HubState {
  if (!isObject(payload)) {
    return {
      kind: 'error',
      message: t('ext-no-json', [status])
    };
  }
  if (status !== 200 || typeof payload.error === 'string') {
    return {
      kind: 'error',
      message:
        typeof payload.error === 'string'
          ? payload.error
          : t('ext-status', [status])
    };
  }
  if (payload.configured !== true) {
    return {
      kind: 'unconfigured',
      message:
        typeof payload.message === 'string'
          ? payload.message
          : t('hub-unconfigured')
    };
  }
  const services: IHubService[] = [];
  for (const item of Array.isArray(payload.services) ? payload.services : []) {
    if (!isObject(item) || typeof item.name !== 'string' || typeof item.project !== 'string') {
      continue;
    }
    services.push({
      project: item.project,
      name: item.name,
      group: stringOrNull(item.group),
      status: typeof item.status === 'string' ? item.status : 'registered',
      published_version:
        typeof item.published_version === 'number' ? item.published_version : null,
      page_url: typeof item.page_url === 'string' ? item.page_url : '',
      api_url: stringOrNull(item.api_url)
    });
  }
  return {
    kind: 'services',
    hubUrl: typeof payload.hub_url === 'string' ? payload.hub_url : '',
    services
  };
}

/** The endpoint of one kernel, or undefined when that kernel does not serve. */
export function endpointOf(
  endpoints: IEndpoint[],
  kernelId: string | null | undefined
): IEndpoint | undefined {
  return kernelId ? endpoints.find(e => e.kernel_id === kernelId) : undefined;
}

/** The status-bar text for the current notebook's kernel. */
export function statusText(endpoint: IEndpoint | undefined): string {
  if (!endpoint) {
    return t('status-none');
  }
  const n = endpoint.commands.length;
  return n === 1 ? t('status-one') : t('status-many', [n]);
}

/** What "AlgoLink: Serve this notebook" says once the kernel serves (or does not yet). */
export function serveMessage(endpoint: IEndpoint | undefined): string {
  if (!endpoint) {
    return t('serve-unseen');
  }
  const n = endpoint.commands.length;
  if (!n) {
    return t('serve-none');
  }
  const names = endpoint.commands.join(', ');
  return n === 1 ? t('serve-one', [names]) : t('serve-many', [n, names]);
}

/** A command's absolute URL: the proxy URL (a path below Jupyter's base URL) on the page's origin. */
export function commandUrl(origin: string, endpoint: IEndpoint, command: string): string {
  const base = new URL(endpoint.url, origin.endsWith('/') ? origin : origin + '/');
  const path = base.pathname.endsWith('/') ? base.pathname : base.pathname + '/';
  return `${base.origin}${path}${encodeURIComponent(command)}`;
}

/** A value that fits an input, for a first curl call. */
export function exampleValue(input: IInputSpec): unknown {
  if (input.default !== undefined && input.default !== null) {
    return input.default;
  }
  switch (input.type) {
    case 'number':
      return typeof input.min === 'number' ? input.min : 0;
    case 'boolean':
      return false;
    case 'category':
      return Array.isArray(input.oneOf) && input.oneOf.length ? input.oneOf[0] : '';
    case 'text':
      return 'hello';
    case 'vector':
    case 'array':
      return [];
    default:
      return '';
  }
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

const FILE_TYPES = new Set(['image', 'file', 'segmentation']);

/**
 * The curl line that calls a command through Jupyter: authenticated with the Jupyter token (read from
 * `$JUPYTER_TOKEN`, never the kernel's own token). With the command's inputs, the body is an example of
 * them: a multipart form with a file part per image or file input, JSON otherwise.
 */
export function curlLine(url: string, inputs?: IInputSpec[]): string {
  const parts = ['curl', '-X', 'POST', '-H', '"Authorization: token $JUPYTER_TOKEN"'];
  const specs = inputs ?? [];
  if (specs.some(i => FILE_TYPES.has(i.type))) {
    for (const input of specs) {
      if (FILE_TYPES.has(input.type)) {
        const file = input.type === 'file' ? `${input.name}.bin` : `${input.name}.png`;
        parts.push('-F', shellQuote(`${input.name}=@${file}`));
      } else {
        const value = exampleValue(input);
        const text = typeof value === 'string' ? value : JSON.stringify(value);
        parts.push('-F', shellQuote(`${input.name}=${text}`));
      }
    }
  } else {
    const body: Record<string, unknown> = {};
    for (const input of specs) {
      body[input.name] = exampleValue(input);
    }
    parts.push('-H', shellQuote('Content-Type: application/json'));
    parts.push('-d', shellQuote(JSON.stringify(body)));
  }
  parts.push(shellQuote(url));
  return parts.join(' ');
}

/** The inputs of a command spec (`GET /<command>` of the model server); [] when it has none. */
export function parseInputs(spec: unknown): IInputSpec[] {
  if (!isObject(spec) || !Array.isArray(spec.inputs)) {
    return [];
  }
  const inputs: IInputSpec[] = [];
  for (const item of spec.inputs) {
    if (isObject(item) && typeof item.name === 'string' && typeof item.type === 'string') {
      inputs.push({
        name: item.name,
        type: item.type,
        default: item.default,
        oneOf: Array.isArray(item.oneOf) ? item.oneOf : undefined,
        min: typeof item.min === 'number' ? item.min : undefined
      });
    }
  }
  return inputs;
}

/** The CSS modifier of a hub status: online, building (also starting), failed, offline, registered. */
export function statusClass(status: string): string {
  switch (status) {
    case 'online':
      return 'online';
    case 'building':
    case 'starting':
      return 'building';
    case 'failed':
      return 'failed';
    case 'offline':
      return 'offline';
    default:
      return 'registered';
  }
}

/** A short name for a notebook path: its file name. */
export function notebookName(path: string | null): string {
  if (!path) {
    return t('no-notebook');
  }
  const parts = path.split('/');
  return parts[parts.length - 1] || path;
}
