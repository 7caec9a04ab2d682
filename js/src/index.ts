/**
 * AlgoLink in JupyterLab: a left sidebar panel (the kernel's endpoints and the hub's services), the
 * palette commands "AlgoLink: Serve this notebook" and "AlgoLink: Publish this notebook", and a status-bar
 * item with how many commands the current notebook's kernel serves.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, ISessionContext, Notification } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { KernelMessage } from '@jupyterlab/services';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { setTranslator, trans } from './i18n';
import { endpointOf, mayPublish, serveMessage, statusText } from './model';
import { AlgoLinkPanel } from './panel';
import { AlgoLinkStore } from './store';

/** The ids of the commands. */
export const CommandIDs = {
  serve: 'algolink:serve',
  publish: 'algolink:publish',
  refresh: 'algolink:refresh',
  open: 'algolink:open-panel'
} as const;

const LOAD = '%load_ext algolink_jupyter';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
  <g class="jp-icon3" fill="#616161">
    <circle cx="6" cy="6" r="3"/><circle cx="18" cy="6" r="3"/><circle cx="12" cy="18" r="3"/>
    <path d="M7.6 8.2l3.2 7 1.8-.8-3.2-7zM16.4 8.2l-3.2 7-1.8-.8 3.2-7zM9 5h6v2H9z"/>
  </g>
</svg>`;

export const algolinkIcon = new LabIcon({ name: 'algolink:icon', svgstr: ICON_SVG });

/** Runs code in a kernel without a cell; resolves to its printed text, or rejects with its error. */
async function execute(sessionContext: ISessionContext, code: string): Promise<string> {
  const kernel = sessionContext.session?.kernel;
  if (!kernel) {
    throw new Error(trans.__('The notebook has no kernel: start one (Kernel > Restart Kernel), then retry.'));
  }
  const future = kernel.requestExecute({ code, store_history: false, allow_stdin: false });
  const out: string[] = [];
  let error: string | null = null;
  future.onIOPub = (msg: KernelMessage.IIOPubMessage) => {
    if (KernelMessage.isStreamMsg(msg)) {
      out.push(msg.content.text);
    } else if (KernelMessage.isErrorMsg(msg)) {
      error = `${msg.content.ename}: ${msg.content.evalue}`;
    } else if (KernelMessage.isExecuteResultMsg(msg) || KernelMessage.isDisplayDataMsg(msg)) {
      const text = msg.content.data['text/plain'];
      if (typeof text === 'string') {
        out.push(text + '\n');
      }
    }
  };
  await future.done;
  if (error !== null) {
    throw new Error(error);
  }
  return out.join('');
}

/** The status-bar item: "AlgoLink: N commands" for the current notebook's kernel. */
class StatusItem extends Widget {
  constructor() {
    super();
    this.id = 'algolink-status';
    this.addClass('algolink-status');
    this.addClass('jp-StatusBar-TextItem');
  }

  update_(text: string, count: number | null): void {
    this.node.textContent = text;
    this.node.dataset.count = count === null ? '' : String(count);
    this.node.title = count === null ? trans.__('This notebook\'s kernel does not serve: run AlgoLink: Serve this notebook') : trans.__('This notebook\'s kernel serves %1 command(s): see the AlgoLink panel', count);
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'algolink-jupyter:plugin',
  description:
    "AlgoLink: the kernel's live endpoints and the hub's services, serve and publish commands.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, IStatusBar, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    statusBar: IStatusBar | null,
    translator: ITranslator | null
  ) => {
    setTranslator(translator);
    const store = new AlgoLinkStore();
    const current = (): NotebookPanel | null => tracker.currentWidget;
    const currentKernelId = (): string | null =>
      current()?.sessionContext.session?.kernel?.id ?? null;

    const serve = async (): Promise<void> => {
      const panel = current();
      if (!panel) {
        Notification.warning(trans.__('Open a notebook first, then run AlgoLink: Serve this notebook.'));
        return;
      }
      await panel.sessionContext.ready;
      try {
        await execute(panel.sessionContext, `${LOAD}\n%algolink serve`);
      } catch (e) {
        Notification.error(trans.__('Could not serve this notebook: %1', (e as Error).message), {
          autoClose: false
        });
        return;
      }
      await store.refreshEndpoints();
      // The kernel's own URL and token stay out of the page: the panel shows the URLs through Jupyter.
      Notification.success(serveMessage(endpointOf(store.endpoints, currentKernelId())), {
        autoClose: 8000
      });
    };

    const publish = async (): Promise<void> => {
      const panel = current();
      if (!panel) {
        Notification.warning(trans.__('Open a notebook first, then run AlgoLink: Publish this notebook.'));
        return;
      }
      await panel.sessionContext.ready;
      try {
        await execute(panel.sessionContext, LOAD);
      } catch (e) {
        Notification.error(trans.__('Could not load AlgoLink in this notebook\'s kernel: %1', (e as Error).message), { autoClose: false });
        return;
      }
      const notebook = panel.content;
      notebook.activeCellIndex = notebook.widgets.length - 1;
      NotebookActions.insertBelow(notebook);
      notebook.activeCell?.model.sharedModel.setSource('%algolink publish');
      await NotebookActions.run(notebook, panel.sessionContext);
      app.shell.activateById(panel.id);
    };

    app.commands.addCommand(CommandIDs.serve, {
      label: trans.__('AlgoLink: Serve this notebook'),
      caption: trans.__('Serve the current notebook\'s commands from its kernel (%algolink serve)'),
      isEnabled: () => current() !== null,
      execute: () => serve()
    });
    app.commands.addCommand(CommandIDs.publish, {
      label: trans.__('AlgoLink: Publish this notebook'),
      caption: trans.__('Add a %algolink publish cell at the end of the notebook and run it'),
      // Not for a user the hub lets publish nowhere (the panel says why); unknown (no answer yet, or
      // an unreachable hub) leaves it to the publish form to say.
      isEnabled: () => current() !== null && mayPublish(store.hub) !== false,
      execute: () => publish()
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: trans.__('AlgoLink: Refresh the panel'),
      execute: () => store.refresh()
    });

    const sidebar = new AlgoLinkPanel({
      store,
      currentKernelId,
      hasNotebook: () => current() !== null,
      serve: () => void app.commands.execute(CommandIDs.serve),
      publish: () => void app.commands.execute(CommandIDs.publish)
    });
    sidebar.title.icon = algolinkIcon;
    app.shell.add(sidebar, 'left', { rank: 900 });
    app.commands.addCommand(CommandIDs.open, {
      label: trans.__('AlgoLink: Show the panel'),
      execute: () => app.shell.activateById(sidebar.id)
    });

    if (palette) {
      const category = 'AlgoLink';
      for (const command of [
        CommandIDs.serve,
        CommandIDs.publish,
        CommandIDs.refresh,
        CommandIDs.open
      ]) {
        palette.addItem({ command, category });
      }
    }

    const status = new StatusItem();
    const showStatus = (): void => {
      const endpoint = endpointOf(store.endpoints, currentKernelId());
      status.update_(statusText(endpoint), endpoint ? endpoint.commands.length : null);
    };
    if (statusBar) {
      statusBar.registerStatusItem('algolink-jupyter:status', {
        item: status,
        align: 'left',
        rank: 4,
        isActive: () => current() !== null
      });
    }

    // Refresh on kernel changes: another notebook, another kernel, a kernel that went idle (a cell that
    // ran `%algolink serve` or redefined a command).
    let pending: number | null = null;
    const soon = (): void => {
      if (pending === null) {
        pending = window.setTimeout(() => {
          pending = null;
          void store.refreshEndpoints();
        }, 300);
      }
    };
    let watched: ISessionContext | null = null;
    const onStatus = (context: ISessionContext): void => {
      if (context.kernelDisplayStatus === 'idle') {
        soon();
      }
    };
    tracker.currentChanged.connect(() => {
      if (watched) {
        watched.kernelChanged.disconnect(soon);
        watched.statusChanged.disconnect(onStatus);
      }
      watched = current()?.sessionContext ?? null;
      if (watched) {
        watched.kernelChanged.connect(soon);
        watched.statusChanged.connect(onStatus);
      }
      showStatus();
      sidebar.render();
      soon();
    });
    store.changed.connect(showStatus);
    store.changed.connect(() => app.commands.notifyCommandChanged(CommandIDs.publish));
    store.start();
  }
};

export default plugin;
