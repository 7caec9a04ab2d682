/**
 * What the panel and the status bar show, asked from the AlgoLink server extension: the serving kernels
 * (every few seconds and on demand) and the hub's services (less often, and on demand).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { language, trans } from './i18n';
import {
  HubState,
  IAccess,
  IEndpoint,
  IInputSpec,
  IRecordedExample,
  parseAccess,
  parseEndpoints,
  parseExamples,
  parseHubState,
  parseInputs
} from './model';

/** How often the kernel endpoints are asked for, in milliseconds. */
export const ENDPOINTS_INTERVAL = 5000;
/** How often the hub's services are asked for, in milliseconds. */
export const HUB_INTERVAL = 15000;

export class AlgoLinkStore {
  constructor(settings?: ServerConnection.ISettings) {
    this.settings = settings ?? ServerConnection.makeSettings();
  }

  /** The serving kernels of this Jupyter server. */
  endpoints: IEndpoint[] = [];
  /** The hub's services, or why they cannot be shown; null before the first answer. */
  hub: HubState | null = null;
  /** Why the endpoints could not be asked for, or null. */
  endpointsError: string | null = null;
  /** How this Jupyter server takes a client's credentials; null until known (or when unknown). */
  access: IAccess | null = null;

  readonly settings: ServerConnection.ISettings;

  /** Emitted after every answer. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Ask for the endpoints every ENDPOINTS_INTERVAL and for the hub every HUB_INTERVAL. */
  start(): void {
    void this.refresh();
    this._timers.push(
      window.setInterval(() => {
        if (!document.hidden) {
          void this.refreshEndpoints();
        }
      }, ENDPOINTS_INTERVAL),
      window.setInterval(() => {
        if (!document.hidden) {
          void this.refreshHub();
        }
      }, HUB_INTERVAL)
    );
  }

  dispose(): void {
    this._timers.forEach(t => window.clearInterval(t));
    this._timers = [];
  }

  /** Both lists (and how curl authenticates), now. */
  async refresh(): Promise<void> {
    await Promise.all([this.refreshEndpoints(), this.refreshHub(), this.refreshAccess()]);
  }

  async refreshAccess(): Promise<void> {
    try {
      const response = await this.request('algolink/api/access');
      this.access = response.ok ? parseAccess(await response.json()) : null;
    } catch {
      this.access = null;
    }
    this._changed.emit();
  }

  async refreshEndpoints(): Promise<void> {
    try {
      const response = await this.request('algolink/api/endpoints');
      if (!response.ok) {
        throw new Error(`${response.status} ${response.statusText}`);
      }
      this.endpoints = parseEndpoints(await response.json());
      this.endpointsError = null;
    } catch (e) {
      this.endpoints = [];
      this.endpointsError = trans.__('Cannot list the kernel endpoints (%1): check that the algolink_jupyter server extension is enabled (jupyter server extension list).', String(e));
    }
    this._changed.emit();
  }

  async refreshHub(): Promise<void> {
    try {
      // the server extension's sentences (hub unreachable, not signed in) in JupyterLab's language
      const response = await this.request(
        'algolink/api/hub/services?lang=' + encodeURIComponent(language())
      );
      let payload: unknown = null;
      try {
        payload = await response.json();
      } catch {
        payload = null;
      }
      this.hub = parseHubState(payload, response.status);
    } catch (e) {
      this.hub = {
        kind: 'error',
        message: trans.__('Cannot ask the Jupyter server for the hub\'s services (%1): check that JupyterLab still runs.', String(e))
      };
    }
    this._changed.emit();
  }

  /** The inputs of a command, from its spec through the kernel's proxy; null when it cannot be read. */
  async commandInputs(endpoint: IEndpoint, command: string): Promise<IInputSpec[] | null> {
    try {
      const url = URLExt.join(endpoint.url, encodeURIComponent(command));
      const response = await ServerConnection.makeRequest(
        url.startsWith('/') ? URLExt.join(this.origin(), url) : url,
        { method: 'GET' },
        this.settings
      );
      return response.ok ? parseInputs(await response.json()) : null;
    } catch {
      return null;
    }
  }

  /** The command's recorded examples (beside the kernel's notebook), newest first; [] when none. */
  async commandExamples(endpoint: IEndpoint, command: string): Promise<IRecordedExample[]> {
    try {
      const response = await this.request(
        `algolink/api/examples/${encodeURIComponent(endpoint.kernel_id)}/${encodeURIComponent(command)}`
      );
      return response.ok ? parseExamples(await response.json()) : [];
    } catch {
      return [];
    }
  }

  /** The page's origin, e.g. http://localhost:8888. */
  origin(): string {
    return new URL(this.settings.baseUrl, window.location.href).origin;
  }

  private request(path: string): Promise<Response> {
    return ServerConnection.makeRequest(
      URLExt.join(this.settings.baseUrl, path),
      { method: 'GET' },
      this.settings
    );
  }

  private _changed = new Signal<this, void>(this);
  private _timers: number[] = [];
}
