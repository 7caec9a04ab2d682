/**
 * The DOM-free part of the AlgoLink panel: what the server extension answers, checked; the curl line of a
 * command; the status-bar text. Unit-tested with node's own test runner (see ../test/).
 */

import { listText, trans } from './i18n';
import { dataUri, EMPTY_ZIP, solidPng } from './samples';

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
  /** The signed-in user's role in the service's project: viewer, developer or owner. */
  role: string | null;
  /** The last hour through /serve (an online service, on a hub that measures): the sparklines. */
  activity: IHubActivity | null;
}

/** A service's last hour: a point a minute (null: nothing to say), the hour's totals. */
export interface IHubActivity {
  requestsPerMinute: (number | null)[];
  /** p95 latency, in seconds. */
  p95: (number | null)[];
  requests: number;
  errors: number;
}

function numbers(value: unknown): (number | null)[] {
  return Array.isArray(value)
    ? value.map(v => (typeof v === 'number' && isFinite(v) ? v : null))
    : [];
}

/** A service's ``activity`` in the hub route's answer; null when it has none. */
export function parseActivity(value: unknown): IHubActivity | null {
  if (!isObject(value)) {
    return null;
  }
  return {
    requestsPerMinute: numbers(value.requests_per_minute),
    p95: numbers(value.p95),
    requests: typeof value.requests === 'number' ? value.requests : 0,
    errors: typeof value.errors === 'number' ? value.errors : 0
  };
}

/**
 * An SVG polyline's ``points`` for ``values`` in a ``width`` x ``height`` box (the largest value at
 * the top, 0 at the bottom); a missing value ends one line and the next begins a new one, so the
 * answer is one ``points`` string per unbroken run (a run of one point is drawn as a dot).
 */
export function sparkRuns(values: (number | null)[], width: number, height: number): string[] {
  const top = Math.max(0, ...values.map(v => v ?? 0));
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const runs: string[] = [];
  let run: string[] = [];
  values.forEach((v, i) => {
    if (v === null) {
      if (run.length) {
        runs.push(run.join(' '));
      }
      run = [];
      return;
    }
    const y = top > 0 ? height - (v / top) * height : height;
    run.push(`${+(i * step).toFixed(2)},${+y.toFixed(2)}`);
  });
  if (run.length) {
    runs.push(run.join(' '));
  }
  return runs;
}

/** The token the Jupyter server asks the hub with: its name and what narrows it. */
export interface IHubToken {
  name: string;
  scopes: string[];
  project: string | null;
  service: string | null;
  expiresAt: string | null;
  /** Whether anything narrows it (a project or service, fewer scopes, an expiry). */
  limited: boolean;
}

/** Who the hub takes the Jupyter server's token for. */
export interface IHubUser {
  name: string;
  displayName: string;
  admin: boolean;
  /** project -> role (viewer, developer, owner) of the user's memberships. */
  projects: Record<string, string>;
  token: IHubToken | null;
}

/** Why a user may publish nowhere: the token lacks a scope, is limited to one service, the user is a
 * viewer only, or has no project at all. */
export type CannotPublish = 'scope' | 'service' | 'viewer' | 'none';

/** What the signed-in user may publish to (the server extension works it out from the hub's answers). */
export interface IHubRights {
  publish: boolean;
  /** The projects they may publish to (developer, owner, or any for a hub admin). */
  projects: string[];
  /** Whether they may make a new project (and publish there). */
  createProjects: boolean;
  /** The projects they see as a viewer only. */
  viewerOf: string[];
  reason: CannotPublish | null;
}

/** The hub section's state. */
export type HubState =
  | {
      kind: 'services';
      hubUrl: string;
      services: IHubService[];
      /** Who is signed in (null: a server extension that does not say). */
      user: IHubUser | null;
      rights: IHubRights | null;
    }
  | { kind: 'signed-out'; hubUrl: string }
  | { kind: 'unconfigured'; message: string }
  | { kind: 'error'; message: string };

/** An input of a command (or an array's item type), as the model server's `GET /<command>` describes it. */
export interface IInputSpec {
  name: string;
  type: string;
  /** Whether the input has a default (a missing input takes it). */
  hasDefault?: boolean;
  default?: unknown;
  /** A category's choices (`oneOf` in the spec). */
  oneOf?: unknown[];
  min?: number;
  max?: number;
  step?: number;
  minLength?: number;
  maxLength?: number;
  /** A vector's or landmarks' length. */
  length?: number;
  width?: number;
  height?: number;
  minWidth?: number;
  minHeight?: number;
  maxWidth?: number;
  maxHeight?: number;
  /** A segmentation's labels and the one a blank map holds. */
  labelToId?: Record<string, number>;
  defaultLabel?: string;
  /** A file's extensions (`.pt`). */
  extension?: string[];
  /** An array's item type. */
  itemType?: IInputSpec;
}

/** How this Jupyter server takes a client's credentials, as `GET <base>algolink/api/access` says. */
export interface IAccess {
  /**
   * `token`: Jupyter's token; `hub`: a JupyterHub API token; `none`: authentication is off; `password`:
   * a password only; `other`: another identity provider.
   */
  mode: 'token' | 'hub' | 'none' | 'password' | 'other';
  /** Whether a POST without a token must pass Jupyter's XSRF check. */
  xsrf: boolean;
}

/** A recorded example of a command (`algolink_examples/<command>/NNN.json` beside the notebook). */
export interface IRecordedExample {
  /** Its file, relative to the notebook's folder. */
  file: string;
  /** Its inputs, as wire values. */
  inputs: Record<string, unknown>;
}

/** A curl line's body and where it comes from: a recorded example's file, or null for a sample. */
export interface IRequestBody {
  body: Record<string, unknown>;
  example: string | null;
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
      message: trans.__('The AlgoLink server extension answered %1 without JSON: restart JupyterLab.', status)
    };
  }
  if (status !== 200 || typeof payload.error === 'string') {
    return {
      kind: 'error',
      message:
        typeof payload.error === 'string'
          ? payload.error
          : trans.__('The AlgoLink server extension answered %1: restart JupyterLab.', status)
    };
  }
  if (payload.configured !== true) {
    return {
      kind: 'unconfigured',
      message:
        typeof payload.message === 'string'
          ? payload.message
          : trans.__('Set ALGOLINK_HUB_URL and ALGOLINK_TOKEN to see the hub here.')
    };
  }
  const hubUrl = typeof payload.hub_url === 'string' ? payload.hub_url : '';
  if (payload.signed_in === false) {
    return { kind: 'signed-out', hubUrl };
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
      api_url: stringOrNull(item.api_url),
      role: stringOrNull(item.role),
      activity: parseActivity(item.activity)
    });
  }
  return {
    kind: 'services',
    hubUrl,
    services,
    user: parseUser(payload.user),
    rights: parseRights(payload.may)
  };
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** The signed-in user in the hub route's answer; null when it has none. */
export function parseUser(value: unknown): IHubUser | null {
  if (!isObject(value) || typeof value.name !== 'string' || !value.name) {
    return null;
  }
  const projects: Record<string, string> = {};
  if (isObject(value.projects)) {
    for (const [project, role] of Object.entries(value.projects)) {
      if (typeof role === 'string') {
        projects[project] = role;
      }
    }
  }
  const token = isObject(value.token) ? value.token : null;
  return {
    name: value.name,
    displayName: stringOrNull(value.display_name) ?? value.name,
    admin: value.admin === true,
    projects,
    token: token
      ? {
          name: typeof token.name === 'string' ? token.name : '',
          scopes: strings(token.scopes),
          project: stringOrNull(token.project),
          service: stringOrNull(token.service),
          expiresAt: stringOrNull(token.expires_at),
          limited: strings(token.limits).length > 0
        }
      : null
  };
}

const REASONS = ['scope', 'service', 'viewer', 'none'];

/** What the user may publish to, in the hub route's answer; null when it does not say. */
export function parseRights(value: unknown): IHubRights | null {
  if (!isObject(value) || typeof value.publish !== 'boolean') {
    return null;
  }
  return {
    publish: value.publish,
    projects: strings(value.projects),
    createProjects: value.create_projects === true,
    viewerOf: strings(value.viewer_of),
    reason: REASONS.includes(value.reason as string) ? (value.reason as CannotPublish) : null
  };
}

/** Whether the signed-in user may publish: true or false once the hub said, else null (unknown). */
export function mayPublish(hub: HubState | null): boolean | null {
  if (hub === null || hub.kind === 'error' || hub.kind === 'unconfigured') {
    return null;
  }
  if (hub.kind === 'signed-out') {
    return false;
  }
  return hub.rights ? hub.rights.publish : null;
}

/** "Ada Lovelace (ada)", or the name alone when it is its own display name. */
export function whoText(user: IHubUser): string {
  return user.displayName && user.displayName !== user.name
    ? `${user.displayName} (${user.name})`
    : user.name;
}

/** "Token cli-laptop: limited to the project demo; scopes invoke, read; expires …" for a token
 * narrower than its user; null for one with all its user's say. */
export function tokenText(user: IHubUser): string | null {
  const token = user.token;
  if (!token || !token.limited) {
    return null;
  }
  const parts: string[] = [];
  if (token.service) {
    parts.push(trans.__('limited to the service %1', token.service));
  } else if (token.project) {
    parts.push(trans.__('limited to the project %1', token.project));
  }
  const full = ['invoke', 'manage', 'metrics', 'read', 'write']
    .concat(user.admin ? ['admin'] : [])
    .sort();
  const scopes = [...token.scopes].sort();
  if (scopes.join(',') !== full.join(',')) {
    parts.push(trans.__('scopes %1', scopes.join(', ') || '-'));
  }
  if (token.expiresAt) {
    parts.push(trans.__('expires %1', token.expiresAt));
  }
  return trans.__('Token %1: %2.', token.name, parts.join('; '));
}

/** Where the user may publish ("demo, vision or a new project"), for the sidebar. */
export function publishWhereText(rights: IHubRights): string {
  const places = [...rights.projects];
  if (rights.createProjects) {
    places.push(trans.__('a new project of your own'));
  }
  return trans.__('You may publish to %1.', listText(places));
}

/** Why the user may publish nowhere and what to ask for; '' when they may. */
export function cannotPublishText(user: IHubUser | null, rights: IHubRights | null): string {
  if (!rights || rights.publish) {
    return '';
  }
  switch (rights.reason) {
    case 'scope':
      return trans.__('The token %1 cannot publish: publishing needs the read and write scopes and it has %2. Run `algolink login` for a token that may write.', user?.token?.name ?? '',
        (user?.token?.scopes ?? []).slice().sort().join(', ') || '-');
    case 'service':
      return trans.__('This token is limited to the service %1, and publishing from the notebook needs a token for a whole project: run `algolink login` for one that is not limited to a service.', user?.token?.service ?? '');
    case 'viewer':
      return trans.__('You are a viewer of %1: you may call the services but not publish. To publish, ask a project owner to make you a developer.', listText(rights.viewerOf));
    default:
      return trans.__('You may publish to no project on this hub: ask a project owner to make you a developer.');
  }
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
    return trans.__('AlgoLink: not serving');
  }
  const n = endpoint.commands.length;
  return n === 1 ? trans.__('AlgoLink: 1 command') : trans.__('AlgoLink: %1 commands', n);
}

/** What "AlgoLink: Serve this notebook" says once the kernel serves (or does not yet). */
export function serveMessage(endpoint: IEndpoint | undefined): string {
  if (!endpoint) {
    return trans.__('The kernel serves, but Jupyter does not see it yet: it will appear in the AlgoLink panel.');
  }
  const n = endpoint.commands.length;
  if (!n) {
    return trans.__('The kernel serves no command yet: define one with %1, then run it.', '%%algolink_command');
  }
  const names = endpoint.commands.join(', ');
  return n === 1 ? trans.__('Serving 1 command (%1): see the AlgoLink panel for the URLs and curl lines.', names) : trans.__('Serving %1 commands (%2): see the AlgoLink panel for the URLs and curl lines.', n, names);
}

/** A command's absolute URL: the proxy URL (a path below Jupyter's base URL) on the page's origin. */
export function commandUrl(origin: string, endpoint: IEndpoint, command: string): string {
  const base = new URL(endpoint.url, origin.endsWith('/') ? origin : origin + '/');
  const path = base.pathname.endsWith('/') ? base.pathname : base.pathname + '/';
  return `${base.origin}${path}${encodeURIComponent(command)}`;
}

const ACCESS_MODES = ['token', 'hub', 'none', 'password', 'other'];

/** How this Jupyter server takes credentials; null when the answer is not one. */
export function parseAccess(payload: unknown): IAccess | null {
  if (!isObject(payload) || !ACCESS_MODES.includes(payload.mode as string)) {
    return null;
  }
  return { mode: payload.mode as IAccess['mode'], xsrf: payload.xsrf !== false };
}

/** The recorded examples in an answer of `GET <base>algolink/api/examples/<kernel>/<command>`. */
export function parseExamples(payload: unknown): IRecordedExample[] {
  if (!isObject(payload) || !Array.isArray(payload.examples)) {
    return [];
  }
  return payload.examples.filter(
    (e): e is IRecordedExample => isObject(e) && typeof e.file === 'string' && isObject(e.inputs)
  );
}

/** A size an image input takes: the declared one, else 8 within the declared limits (as the runtime's
 * OpenAPI example). */
function side(exact?: number, low?: number, high?: number): number {
  if (exact !== undefined) {
    return exact;
  }
  const wanted = Math.max(8, low ?? 0);
  return high !== undefined ? Math.min(wanted, high) : wanted;
}

/** A number the input takes: its minimum, else 0 (or its maximum, on the step counted from 0). */
function sampleNumber(input: IInputSpec): number {
  if (input.min !== undefined) {
    return input.min;
  }
  if (input.max !== undefined && input.max < 0) {
    return input.step ? Math.floor(input.max / input.step) * input.step : input.max;
  }
  return 0;
}

function sampleText(input: IInputSpec): string {
  const low = input.minLength ?? 0;
  const high = input.maxLength ?? Infinity;
  const text = 'hello'.padEnd(low, '!');
  return text.slice(0, Math.min(text.length, high));
}

/**
 * A wire value the input accepts (what the model server's `POST /<command>` takes as JSON), for a first
 * curl call: its default when it has one, else a value within its limits: images as a white PNG data URI
 * of a size they take, segmentation maps as a PNG of the default label's id, files as
 * `{"filename", "data"}`, directories as an empty zip. A file's or directory's default is a path on the
 * server, which a client may not send: those get a sample too. Undefined (a null default): leave the
 * input out.
 */
export function exampleValue(input: IInputSpec): unknown {
  const hasDefault = input.hasDefault ?? input.default !== undefined;
  if (hasDefault && input.type !== 'file' && input.type !== 'directory') {
    return input.default === null || input.default === undefined ? undefined : input.default;
  }
  return sampleValue(input);
}

function sampleValue(input: IInputSpec): unknown {
  switch (input.type) {
    case 'number':
      return sampleNumber(input);
    case 'boolean':
      return false;
    case 'category':
      return Array.isArray(input.oneOf) && input.oneOf.length ? input.oneOf[0] : '';
    case 'text':
      return sampleText(input);
    case 'any':
      return 'hello';
    case 'vector':
      return new Array(input.length ?? 0).fill(0);
    case 'array': {
      const item = input.itemType ? sampleValue(input.itemType) : null;
      return new Array(input.minLength ?? 0).fill(item);
    }
    case 'image_point':
      return [0.5, 0.5];
    case 'image_bounding_box':
      return [0.25, 0.25, 0.75, 0.75];
    case 'image_landmarks':
      return Array.from({ length: input.length ?? 0 }, () => [0.5, 0.5]);
    case 'image':
    case 'segmentation': {
      const width = side(input.width, input.minWidth, input.maxWidth);
      const height = side(input.height, input.minHeight, input.maxHeight);
      const ids = input.labelToId ?? {};
      const label = input.defaultLabel ?? Object.keys(ids)[0];
      const gray = input.type === 'segmentation' ? ids[label] ?? 0 : undefined;
      return dataUri('image/png', solidPng(width, height, gray));
    }
    case 'file': {
      const extension = input.extension && input.extension.length ? input.extension[0] : '.txt';
      // "hello\n"
      return { filename: `example${extension}`, data: 'aGVsbG8K' };
    }
    case 'directory':
      return dataUri('application/zip', EMPTY_ZIP);
    default:
      return null;
  }
}

/** A body of sample values for the inputs (see exampleValue). */
export function sampleBody(inputs: IInputSpec[]): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  for (const input of inputs) {
    const value = exampleValue(input);
    if (value !== undefined) {
      body[input.name] = value;
    }
  }
  return body;
}

/** Whether a recorded example's inputs still fit the command: no unknown input, none missing. */
export function fitsInputs(values: Record<string, unknown>, inputs: IInputSpec[]): boolean {
  const names = new Set(inputs.map(i => i.name));
  return (
    Object.keys(values).every(name => names.has(name)) &&
    inputs.every(i => i.name in values || (i.hasDefault ?? i.default !== undefined))
  );
}

/**
 * The body of a command's curl line: the newest recorded example that still fits its inputs, else a
 * sample made from them. `inputs` null (the spec could not be read): the newest example, else `{}`.
 */
export function requestBody(
  inputs: IInputSpec[] | null,
  examples: IRecordedExample[] = []
): IRequestBody {
  const example = inputs ? examples.find(e => fitsInputs(e.inputs, inputs)) : examples[0];
  if (example) {
    return { body: example.inputs, example: example.file };
  }
  return { body: sampleBody(inputs ?? []), example: null };
}

/** Quotes a word for a POSIX shell. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The value both halves of Jupyter's XSRF check get when no token is sent (the cookie and the header). */
export const XSRF_VALUE = 'algolink';

/**
 * The curl line that calls a command through Jupyter with a JSON body. Authenticated with the Jupyter
 * token read from `$JUPYTER_TOKEN` (never the kernel's own token, never the token itself); when the
 * server's authentication is off, with no token but what Jupyter's XSRF check wants of a POST (the same
 * value as `_xsrf` cookie and `X-XSRFToken` header).
 */
export function curlLine(
  url: string,
  body: Record<string, unknown>,
  access: IAccess | null = null
): string {
  const parts = ['curl', '-X', 'POST'];
  if (access?.mode === 'none') {
    if (access.xsrf) {
      parts.push('-H', shellQuote(`X-XSRFToken: ${XSRF_VALUE}`), '-b', `_xsrf=${XSRF_VALUE}`);
    }
  } else {
    parts.push('-H', '"Authorization: token $JUPYTER_TOKEN"');
  }
  parts.push('-H', shellQuote('Content-Type: application/json'));
  parts.push('-d', shellQuote(JSON.stringify(body)));
  parts.push(shellQuote(url));
  return parts.join(' ');
}

/** The line that sets `$JUPYTER_TOKEN` for the curl lines, with the token quoted for the shell. */
export function exportLine(token: string): string {
  return `export JUPYTER_TOKEN=${shellQuote(token)}`;
}

/** The address of JupyterHub's token page, from the page's hub host and prefix. */
export function hubTokenUrl(hubHost: string, hubPrefix: string): string {
  const prefix = hubPrefix.endsWith('/') ? hubPrefix : hubPrefix + '/';
  return `${hubHost}${prefix}token`;
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function inputSpec(item: Record<string, unknown>, name: string): IInputSpec | null {
  if (typeof item.type !== 'string') {
    return null;
  }
  const ids = isObject(item.labelToId) ? item.labelToId : undefined;
  const extension = Array.isArray(item.extension)
    ? item.extension.filter((e): e is string => typeof e === 'string')
    : typeof item.extension === 'string'
      ? [item.extension]
      : undefined;
  return {
    name,
    type: item.type,
    hasDefault: 'default' in item,
    default: item.default,
    oneOf: Array.isArray(item.oneOf) ? item.oneOf : undefined,
    min: numberOrUndefined(item.min),
    max: numberOrUndefined(item.max),
    step: numberOrUndefined(item.step),
    minLength: numberOrUndefined(item.minLength),
    maxLength: numberOrUndefined(item.maxLength),
    length: numberOrUndefined(item.length),
    width: numberOrUndefined(item.width),
    height: numberOrUndefined(item.height),
    minWidth: numberOrUndefined(item.minWidth),
    minHeight: numberOrUndefined(item.minHeight),
    maxWidth: numberOrUndefined(item.maxWidth),
    maxHeight: numberOrUndefined(item.maxHeight),
    labelToId: ids
      ? Object.fromEntries(
          Object.entries(ids).filter((e): e is [string, number] => typeof e[1] === 'number')
        )
      : undefined,
    defaultLabel: typeof item.defaultLabel === 'string' ? item.defaultLabel : undefined,
    extension,
    itemType: isObject(item.itemType) ? inputSpec(item.itemType, '') ?? undefined : undefined
  };
}

/** The inputs of a command spec (`GET /<command>` of the model server); null when it is not a spec. */
export function parseInputs(spec: unknown): IInputSpec[] | null {
  if (!isObject(spec) || !Array.isArray(spec.inputs)) {
    return null;
  }
  const inputs: IInputSpec[] = [];
  for (const item of spec.inputs) {
    if (isObject(item) && typeof item.name === 'string') {
      const input = inputSpec(item, item.name);
      if (input) {
        inputs.push(input);
      }
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
    return trans.__('a kernel without a notebook');
  }
  const parts = path.split('/');
  return parts[parts.length - 1] || path;
}
