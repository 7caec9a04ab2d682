/**
 * The "AlgoLink" left sidebar panel: the serving kernels with their commands and a copy-curl button each,
 * and the hub's services with their status and links to their pages.
 *
 * Stable hooks for tests: `#algolink-panel`, `[data-section="kernel"|"other-kernels"|"hub"]`,
 * `.algolink-endpoint[data-kernel-id]`, `.algolink-command[data-command]`, `.algolink-copy-curl`,
 * `.algolink-curl` (the last copied line), `.algolink-curl-body` (where its body comes from),
 * `[data-section="curl"]` with `.algolink-curl-auth[data-mode]` and `.algolink-copy-export` (copies the
 * line that sets `$JUPYTER_TOKEN`; the token itself is never shown),
 * `.algolink-service[data-project][data-service][data-status][data-role]`; in the hub section,
 * `.algolink-user[data-signed-in][data-user]` (who the hub takes the Jupyter server's token for),
 * `.algolink-token` (what narrows that token), `button.algolink-publish-notebook` (only for a user who may
 * publish somewhere), `.algolink-publish-where`, `.algolink-viewer-note` and `.algolink-cannot-publish`
 * (why the user may publish nowhere, and what to ask for).
 */
import { Clipboard } from '@jupyterlab/apputils';
import { PageConfig } from '@jupyterlab/coreutils';
import { Widget } from '@lumino/widgets';

import {
  cannotPublishText,
  commandUrl,
  curlLine,
  endpointOf,
  exportLine,
  HubState,
  IAccess,
  IEndpoint,
  IHubActivity,
  IHubRights,
  IHubUser,
  hubTokenUrl,
  notebookName,
  publishWhereText,
  requestBody,
  sparkRuns,
  statusClass,
  tokenText,
  whoText
} from './model';
import { listText, roleLabel, statusLabel, trans } from './i18n';
import { AlgoLinkStore } from './store';

export interface IPanelOptions {
  store: AlgoLinkStore;
  /** The kernel id of the current notebook, if any. */
  currentKernelId: () => string | null;
  /** Whether a notebook is open and current. */
  hasNotebook: () => boolean;
  /** Runs "AlgoLink: Serve this notebook". */
  serve: () => void;
  /** Runs "AlgoLink: Publish this notebook". */
  publish: () => void;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A translated message whose `%1`, `%2`... are nodes (a link, a bold name). */
function fill(message: string, parts: (Node | string)[]): DocumentFragment {
  const out = document.createDocumentFragment();
  for (const piece of message.split(/(%\d+)/)) {
    const m = /^%(\d+)$/.exec(piece);
    const part = m ? parts[Number(m[1]) - 1] : piece;
    if (part !== undefined && part !== '') {
      out.append(part);
    }
  }
  return out;
}

/** Shows `text` on a button for two seconds, then `label` again. */
function flash(button: HTMLElement, text: string, label: string): void {
  button.textContent = text;
  window.setTimeout(() => {
    button.textContent = label;
  }, 2000);
}

export class AlgoLinkPanel extends Widget {
  constructor(options: IPanelOptions) {
    super();
    this._options = options;
    this.id = 'algolink-panel';
    this.addClass('algolink-panel');
    this.title.caption = 'AlgoLink';
    options.store.changed.connect(this.render, this);
    this.render();
  }

  dispose(): void {
    this._options.store.changed.disconnect(this.render, this);
    super.dispose();
  }

  /** Draws the panel again from the store, when anything it shows changed. */
  render(): void {
    const { store, currentKernelId, hasNotebook } = this._options;
    const signature = JSON.stringify([
      store.endpoints,
      store.endpointsError,
      store.hub,
      store.access,
      currentKernelId(),
      hasNotebook(),
      [...this._curls]
    ]);
    if (signature === this._signature) {
      return;
    }
    this._signature = signature;
    const root = this.node;
    root.replaceChildren();

    const header = el('div', 'algolink-header');
    header.appendChild(el('h2', 'algolink-title', 'AlgoLink'));
    const refresh = el('button', 'jp-Button algolink-refresh', trans.__('Refresh'));
    refresh.title = trans.__('Ask for the kernel endpoints and the hub services again');
    refresh.onclick = () => void store.refresh();
    header.appendChild(refresh);
    root.appendChild(header);

    root.appendChild(this.kernelSection());
    const others = this.otherKernelsSection();
    if (others) {
      root.appendChild(others);
    }
    if (store.endpoints.some(e => e.commands.length)) {
      root.appendChild(this.curlSection());
    }
    root.appendChild(this.hubSection(store.hub));
  }

  private kernelSection(): HTMLElement {
    const { store, currentKernelId, hasNotebook, serve } = this._options;
    const section = el('section', 'algolink-section');
    section.dataset.section = 'kernel';
    section.appendChild(el('h3', 'algolink-section-title', trans.__('This notebook\'s kernel')));
    if (store.endpointsError) {
      section.appendChild(el('p', 'algolink-message algolink-error', store.endpointsError));
      return section;
    }
    const endpoint = endpointOf(store.endpoints, currentKernelId());
    if (endpoint) {
      section.appendChild(this.endpointBlock(endpoint));
      return section;
    }
    if (!hasNotebook()) {
      section.appendChild(el('p', 'algolink-message', trans.__('Open a notebook to see what its kernel serves.')));
      return section;
    }
    section.appendChild(el('p', 'algolink-message', trans.__('This notebook\'s kernel serves no command yet: define one with %1, then serve it.', '%%algolink_command')));
    const button = el('button', 'jp-Button algolink-serve', trans.__('Serve this notebook'));
    button.onclick = () => serve();
    section.appendChild(button);
    return section;
  }

  private otherKernelsSection(): HTMLElement | null {
    const { store, currentKernelId } = this._options;
    const current = currentKernelId();
    const others = store.endpoints.filter(e => e.kernel_id !== current);
    if (!others.length) {
      return null;
    }
    const section = el('section', 'algolink-section');
    section.dataset.section = 'other-kernels';
    section.appendChild(el('h3', 'algolink-section-title', trans.__('Other serving kernels')));
    others.forEach(e => section.appendChild(this.endpointBlock(e)));
    return section;
  }

  private endpointBlock(endpoint: IEndpoint): HTMLElement {
    const block = el('div', 'algolink-endpoint');
    block.dataset.kernelId = endpoint.kernel_id;
    const name = el('div', 'algolink-notebook', notebookName(endpoint.notebook));
    name.title = trans.__('%1 (kernel %2)', endpoint.notebook ?? '', endpoint.kernel_id);
    block.appendChild(name);
    if (!endpoint.commands.length) {
      block.appendChild(el('p', 'algolink-message', trans.__('Serving, but no command is defined yet.')));
      return block;
    }
    const list = el('ul', 'algolink-commands');
    for (const command of endpoint.commands) {
      const url = commandUrl(this._options.store.origin(), endpoint, command);
      const item = el('li', 'algolink-command');
      item.dataset.command = command;
      const link = el('a', 'algolink-command-name', command);
      link.href = url;
      link.target = '_blank';
      link.rel = 'noopener';
      link.title = trans.__('%1 (the command\'s spec, through Jupyter)', url);
      item.appendChild(link);
      const copy = el('button', 'jp-Button algolink-copy-curl', trans.__('Copy curl'));
      copy.title = trans.__('Copy a curl line that calls %1 through Jupyter', command);
      copy.dataset.command = command;
      copy.onclick = () => void this.copyCurl(endpoint, command, url, copy);
      item.appendChild(copy);
      const copied = this._curls.get(`${endpoint.kernel_id}/${command}`);
      if (copied) {
        const pre = el('pre', 'algolink-curl', copied.line);
        if (this.accessMode() !== 'none') {
          pre.title = trans.__('Set JUPYTER_TOKEN first: see "Calling with curl" below');
        }
        item.appendChild(pre);
        const source = copied.example
          ? trans.__('Body: the recorded example %1', copied.example)
          : trans.__('Body: a sample made from the inputs\' types (save an example from the test form to use it here)');
        item.appendChild(el('p', 'algolink-curl-body', source));
      }
      list.appendChild(item);
    }
    block.appendChild(list);
    return block;
  }

  private async copyCurl(
    endpoint: IEndpoint,
    command: string,
    url: string,
    button: HTMLButtonElement
  ): Promise<void> {
    const { store } = this._options;
    const [inputs, examples] = await Promise.all([
      store.commandInputs(endpoint, command),
      store.commandExamples(endpoint, command)
    ]);
    const { body, example } = requestBody(inputs, examples);
    const line = curlLine(url, body, this.access());
    Clipboard.copyToSystem(line);
    // Shown under the command until the panel is closed, so that it can be read and copied by hand.
    this._curls.set(`${endpoint.kernel_id}/${command}`, { line, example });
    this.render();
    const again = this.node.querySelector<HTMLElement>(
      `.algolink-endpoint[data-kernel-id="${CSS.escape(endpoint.kernel_id)}"] ` +
        `.algolink-copy-curl[data-command="${CSS.escape(command)}"]`
    );
    flash(again ?? button, trans.__('Copied'), trans.__('Copy curl'));
  }

  /** How curl authenticates: as the server extension says, else by whether the page has a token. */
  private access(): IAccess {
    const { store } = this._options;
    return store.access ?? { mode: store.settings.token ? 'token' : 'other', xsrf: true };
  }

  private accessMode(): IAccess['mode'] {
    return this.access().mode;
  }

  /** How to set `$JUPYTER_TOKEN` for the curl lines (or that none is needed), in this server's terms. */
  private curlSection(): HTMLElement {
    const section = el('section', 'algolink-section');
    section.dataset.section = 'curl';
    section.appendChild(el('h3', 'algolink-section-title', trans.__('Calling with curl')));
    const access = this.access();
    const token = this._options.store.settings.token;
    const note = el('p', 'algolink-message algolink-curl-auth');
    note.dataset.mode = access.mode;
    section.appendChild(note);
    switch (access.mode) {
      case 'token':
        if (token) {
          note.textContent = trans.__('The curl lines read this Jupyter server\'s token from $JUPYTER_TOKEN: copy the export line, paste it into your terminal, then paste a curl line.');
          const button = el('button', 'jp-Button algolink-copy-export', trans.__('Copy export line'));
          button.title = trans.__('Copy export JUPYTER_TOKEN=… with this Jupyter server\'s token (it is not shown here)');
          // The token goes to the clipboard on a click, and nowhere else: never into the page.
          button.onclick = () => {
            Clipboard.copyToSystem(exportLine(token));
            flash(button, trans.__('Copied: paste it into your terminal'), trans.__('Copy export line'));
          };
          section.appendChild(button);
        } else {
          note.textContent = trans.__('The curl lines read the Jupyter token from $JUPYTER_TOKEN: set it to the token this Jupyter server printed when it started (jupyter server list shows it).');
        }
        break;
      case 'hub': {
        note.textContent = trans.__('The curl lines read a JupyterHub API token from $JUPYTER_TOKEN: make one on JupyterHub\'s token page, then run export JUPYTER_TOKEN=<that token> in your terminal.');
        const host = PageConfig.getOption('hubHost');
        const prefix = PageConfig.getOption('hubPrefix');
        if (prefix) {
          const link = el('a', 'algolink-hub-token', trans.__('JupyterHub\'s token page'));
          link.href = hubTokenUrl(host, prefix);
          link.target = '_blank';
          link.rel = 'noopener';
          section.appendChild(link);
        }
        break;
      }
      case 'none':
        note.textContent = access.xsrf ? trans.__('This Jupyter server\'s authentication is off: the curl lines need no token. They send the same value as _xsrf cookie and X-XSRFToken header, which Jupyter\'s cross-site check asks of a POST without a token.') : trans.__('This Jupyter server\'s authentication is off: the curl lines need no token.');
        break;
      case 'password':
        note.textContent = trans.__('This Jupyter server logs in with a password, which curl cannot send: start Jupyter with a token (--IdentityProvider.token=…), then export JUPYTER_TOKEN=<that token> to run these lines.');
        break;
      default:
        note.textContent = trans.__('The curl lines read a token this Jupyter server accepts from $JUPYTER_TOKEN: set it before running them.');
    }
    return section;
  }

  private hubSection(hub: HubState | null): HTMLElement {
    const section = el('section', 'algolink-section');
    section.dataset.section = 'hub';
    section.appendChild(el('h3', 'algolink-section-title', trans.__('Hub')));
    if (hub === null) {
      section.appendChild(el('p', 'algolink-message', trans.__('Asking the hub…')));
      return section;
    }
    if (hub.kind === 'signed-out') {
      const message = el('p', 'algolink-message algolink-user', trans.__('Not signed in to %1: run `algolink login --hub %1` in a terminal, then press Refresh.', hub.hubUrl));
      message.dataset.signedIn = 'false';
      message.dataset.state = hub.kind;
      section.appendChild(message);
      return section;
    }
    if (hub.kind !== 'services') {
      const cls = hub.kind === 'error' ? 'algolink-message algolink-error' : 'algolink-message';
      const message = el('p', cls, hub.message);
      message.dataset.state = hub.kind;
      section.appendChild(message);
      return section;
    }
    const link = el('a', 'algolink-hub-link', hub.hubUrl);
    link.href = hub.hubUrl + '/';
    link.target = '_blank';
    link.rel = 'noopener';
    if (hub.user) {
      section.appendChild(this.userBlock(hub.user, link));
    } else {
      section.appendChild(link);
    }
    if (hub.rights) {
      section.appendChild(this.publishBlock(hub.user, hub.rights));
    }
    if (!hub.services.length) {
      const empty =
        hub.rights && !hub.rights.publish
          ? trans.__('None of your projects has a service on the hub yet.')
          : trans.__('The hub has no service yet: publish this notebook (AlgoLink: Publish this notebook).');
      section.appendChild(el('p', 'algolink-message', empty));
      return section;
    }
    const list = el('ul', 'algolink-services');
    for (const service of hub.services) {
      const item = el('li', 'algolink-service');
      item.dataset.project = service.project;
      item.dataset.service = service.name;
      item.dataset.status = service.status;
      const page = el('a', 'algolink-service-name', `${service.project}/${service.name}`);
      page.href = service.page_url;
      page.target = '_blank';
      page.rel = 'noopener';
      page.title = trans.__('The service\'s page on the hub');
      item.appendChild(page);
      const badge = el(
        'span',
        `algolink-status-badge algolink-status-${statusClass(service.status)}`,
        statusLabel(service.status)
      );
      item.appendChild(badge);
      if (service.role) {
        item.dataset.role = service.role;
        const role = el('span', 'algolink-role', roleLabel(service.role));
        role.title = trans.__('Your role in %1', service.project);
        item.appendChild(role);
      }
      if (service.published_version !== null) {
        item.appendChild(
          el('span', 'algolink-version', trans.__('version %1', service.published_version))
        );
      }
      if (service.activity) {
        item.appendChild(activityBlock(service.activity));
      }
      if (service.api_url) {
        const api = el('a', 'algolink-service-api', trans.__('API'));
        api.href = service.api_url;
        api.target = '_blank';
        api.rel = 'noopener';
        api.title = service.api_url;
        item.appendChild(api);
      }
      list.appendChild(item);
    }
    section.appendChild(list);
    return section;
  }

  /** "Signed in to <hub> as Ada Lovelace (ada)", and the token's limits when it has some. */
  private userBlock(user: IHubUser, link: HTMLAnchorElement): HTMLElement {
    const block = el('div', 'algolink-user');
    block.dataset.signedIn = 'true';
    block.dataset.user = user.name;
    if (user.admin) {
      block.dataset.admin = 'true';
    }
    const line = el('p', 'algolink-message algolink-signed-in');
    line.appendChild(fill(trans.__('Signed in to %1 as %2', '%1', '%2'), [link, el('b', 'algolink-user-name', whoText(user))]));
    if (user.admin) {
      line.append(trans.__(', a hub admin'));
    }
    block.appendChild(line);
    const token = tokenText(user);
    if (token) {
      block.appendChild(el('p', 'algolink-message algolink-token', token));
    }
    return block;
  }

  /** A Publish button for a user who may publish somewhere; for one who may not, why, plainly. */
  private publishBlock(user: IHubUser | null, rights: IHubRights): HTMLElement {
    const block = el('div', 'algolink-publish-block');
    if (!rights.publish) {
      block.appendChild(
        el('p', 'algolink-message algolink-cannot-publish', cannotPublishText(user, rights))
      );
      return block;
    }
    const { hasNotebook, publish } = this._options;
    const button = el('button', 'jp-Button algolink-publish-notebook', trans.__('Publish this notebook'));
    button.disabled = !hasNotebook();
    button.title = hasNotebook() ? trans.__('Add a %algolink publish cell at the end of the notebook and run it') : trans.__('Open a notebook to publish it.');
    button.onclick = () => publish();
    block.appendChild(button);
    block.appendChild(el('p', 'algolink-message algolink-publish-where', publishWhereText(rights)));
    if (rights.viewerOf.length) {
      const note = trans.__('You are a viewer of %1: publishing there needs the developer role (ask a project owner to make you a developer).', listText(rights.viewerOf));
      block.appendChild(el('p', 'algolink-message algolink-viewer-note', note));
    }
    return block;
  }

  private _options: IPanelOptions;
  private _signature = '';
  private _curls = new Map<string, { line: string; example: string | null }>();
}

const SVG = 'http://www.w3.org/2000/svg';

/** A small line of ``values`` (plain SVG), its runs broken where a value is missing. */
function sparkline(values: (number | null)[], cls: string): SVGSVGElement {
  const width = 60;
  const height = 14;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', `algolink-spark ${cls}`);
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height + 2));
  svg.setAttribute('viewBox', `0 -1 ${width} ${height + 2}`);
  svg.setAttribute('aria-hidden', 'true');
  for (const points of sparkRuns(values, width, height)) {
    if (points.includes(' ')) {
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', points);
      svg.appendChild(line);
    } else {
      const [x, y] = points.split(',');
      const dot = document.createElementNS(SVG, 'circle');
      dot.setAttribute('cx', x);
      dot.setAttribute('cy', y);
      dot.setAttribute('r', '1.5');
      svg.appendChild(dot);
    }
  }
  return svg;
}

/** A service's last hour: requests per minute and p95 latency, with the figures as its title. */
function activityBlock(activity: IHubActivity): HTMLElement {
  const block = el('span', 'algolink-activity');
  block.dataset.requests = String(activity.requests);
  const p95 = activity.p95.filter((v): v is number => v !== null);
  const last = p95.length ? `${Math.round(p95[p95.length - 1] * 1000)} ms` : '—';
  block.title = activity.requests
    ? trans.__('Last hour: %1 requests, %2 failed (5xx); p95 latency %3', activity.requests, activity.errors, last)
    : trans.__('No requests in the last hour');
  block.appendChild(sparkline(activity.requestsPerMinute, 'algolink-spark-requests'));
  block.appendChild(sparkline(activity.p95, 'algolink-spark-latency'));
  return block;
}
