/**
 * Every string the extension shows, in English and 简体中文 (the hub's two languages, with its words for
 * the service statuses). The language follows JupyterLab's (Settings > Language): a `zh` language code
 * gives Chinese, anything else English. A message is an id, so that neither language can miss one;
 * `{0}`, `{1}` are filled in by `t`.
 */

export type Lang = 'en' | 'zh';

const MESSAGES = {
  'ext-no-json': {
    en: 'The AlgoLink server extension answered {0} without JSON: restart JupyterLab.',
    zh: 'AlgoLink 服务器扩展返回了 {0}，但不是 JSON：请重启 JupyterLab。'
  },
  'ext-status': {
    en: 'The AlgoLink server extension answered {0}: restart JupyterLab.',
    zh: 'AlgoLink 服务器扩展返回了 {0}：请重启 JupyterLab。'
  },
  'hub-unconfigured': {
    en: 'Set ALGOLINK_HUB_URL and ALGOLINK_TOKEN to see the hub here.',
    zh: '请设置 ALGOLINK_HUB_URL 和 ALGOLINK_TOKEN，以便在这里查看中心。'
  },
  'status-none': { en: 'AlgoLink: not serving', zh: 'AlgoLink：未在服务' },
  'status-one': { en: 'AlgoLink: 1 command', zh: 'AlgoLink：1 个命令' },
  'status-many': { en: 'AlgoLink: {0} commands', zh: 'AlgoLink：{0} 个命令' },
  'status-title-none': {
    en: "This notebook's kernel does not serve: run AlgoLink: Serve this notebook",
    zh: '此笔记本的内核尚未提供服务：请运行“AlgoLink：服务此笔记本”'
  },
  'status-title': {
    en: "This notebook's kernel serves {0} command(s): see the AlgoLink panel",
    zh: '此笔记本的内核提供 {0} 个命令：详见 AlgoLink 面板'
  },
  'serve-unseen': {
    en: 'The kernel serves, but Jupyter does not see it yet: it will appear in the AlgoLink panel.',
    zh: '内核已在服务，但 Jupyter 还没有看到它：稍后会出现在 AlgoLink 面板中。'
  },
  'serve-none': {
    en: 'The kernel serves no command yet: define one with %%algolink_command, then run it.',
    zh: '内核还没有提供任何命令：请用 %%algolink_command 定义一个命令，然后运行它。'
  },
  'serve-one': {
    en: 'Serving 1 command ({0}): see the AlgoLink panel for the URLs and curl lines.',
    zh: '正在提供 1 个命令（{0}）：URL 和 curl 命令见 AlgoLink 面板。'
  },
  'serve-many': {
    en: 'Serving {0} commands ({1}): see the AlgoLink panel for the URLs and curl lines.',
    zh: '正在提供 {0} 个命令（{1}）：URL 和 curl 命令见 AlgoLink 面板。'
  },
  'serve-failed': {
    en: 'Could not serve this notebook: {0}',
    zh: '无法为此笔记本提供服务：{0}'
  },
  'load-failed': {
    en: "Could not load AlgoLink in this notebook's kernel: {0}",
    zh: '无法在此笔记本的内核中加载 AlgoLink：{0}'
  },
  'no-kernel': {
    en: 'The notebook has no kernel: start one (Kernel > Restart Kernel), then retry.',
    zh: '此笔记本没有内核：请先启动一个（内核 > 重启内核），然后重试。'
  },
  'open-first-serve': {
    en: 'Open a notebook first, then run AlgoLink: Serve this notebook.',
    zh: '请先打开一个笔记本，然后运行“AlgoLink：服务此笔记本”。'
  },
  'open-first-publish': {
    en: 'Open a notebook first, then run AlgoLink: Publish this notebook.',
    zh: '请先打开一个笔记本，然后运行“AlgoLink：发布此笔记本”。'
  },
  'cmd-serve': { en: 'AlgoLink: Serve this notebook', zh: 'AlgoLink：服务此笔记本' },
  'cmd-serve-caption': {
    en: "Serve the current notebook's commands from its kernel (%algolink serve)",
    zh: '由内核提供当前笔记本的命令（%algolink serve）'
  },
  'cmd-publish': { en: 'AlgoLink: Publish this notebook', zh: 'AlgoLink：发布此笔记本' },
  'cmd-publish-caption': {
    en: 'Add a %algolink publish cell at the end of the notebook and run it',
    zh: '在笔记本末尾添加一个 %algolink publish 单元格并运行它'
  },
  'cmd-refresh': { en: 'AlgoLink: Refresh the panel', zh: 'AlgoLink：刷新面板' },
  'cmd-open': { en: 'AlgoLink: Show the panel', zh: 'AlgoLink：显示面板' },
  'endpoints-error': {
    en: 'Cannot list the kernel endpoints ({0}): check that the algolink_jupyter server extension is enabled (jupyter server extension list).',
    zh: '无法列出内核端点（{0}）：请检查 algolink_jupyter 服务器扩展是否已启用（jupyter server extension list）。'
  },
  'hub-request-error': {
    en: "Cannot ask the Jupyter server for the hub's services ({0}): check that JupyterLab still runs.",
    zh: '无法向 Jupyter 服务器查询中心的模型服务（{0}）：请检查 JupyterLab 是否仍在运行。'
  },
  refresh: { en: 'Refresh', zh: '刷新' },
  'refresh-title': {
    en: 'Ask for the kernel endpoints and the hub services again',
    zh: '重新获取内核端点和中心的模型服务'
  },
  'kernel-title': { en: "This notebook's kernel", zh: '此笔记本的内核' },
  'open-notebook': {
    en: 'Open a notebook to see what its kernel serves.',
    zh: '打开一个笔记本，查看它的内核提供了什么。'
  },
  'serves-nothing': {
    en: "This notebook's kernel serves no command yet: define one with %%algolink_command, then serve it.",
    zh: '此笔记本的内核还没有提供任何命令：请用 %%algolink_command 定义一个命令，然后提供服务。'
  },
  'serve-button': { en: 'Serve this notebook', zh: '服务此笔记本' },
  'other-kernels': { en: 'Other serving kernels', zh: '其他正在服务的内核' },
  'kernel-of': { en: '{0} (kernel {1})', zh: '{0}（内核 {1}）' },
  'no-notebook': { en: 'a kernel without a notebook', zh: '没有笔记本的内核' },
  'no-commands': {
    en: 'Serving, but no command is defined yet.',
    zh: '正在服务，但还没有定义任何命令。'
  },
  'spec-title': {
    en: "{0} (the command's spec, through Jupyter)",
    zh: '{0}（命令说明，经由 Jupyter）'
  },
  'copy-curl': { en: 'Copy curl', zh: '复制 curl' },
  'copy-curl-title': {
    en: 'Copy a curl line that calls {0} through Jupyter',
    zh: '复制一条经由 Jupyter 调用 {0} 的 curl 命令'
  },
  copied: { en: 'Copied', zh: '已复制' },
  'curl-title': {
    en: 'Set JUPYTER_TOKEN first: see "Calling with curl" below',
    zh: '请先设置 JUPYTER_TOKEN：见下方“用 curl 调用”'
  },
  'body-example': {
    en: 'Body: the recorded example {0}',
    zh: '请求体：已保存的示例 {0}'
  },
  'body-sample': {
    en: "Body: a sample made from the inputs' types (save an example from the test form to use it here)",
    zh: '请求体：根据输入类型生成的样例（在测试表单中保存示例后，这里会使用它）'
  },
  'curl-section-title': { en: 'Calling with curl', zh: '用 curl 调用' },
  'curl-token': {
    en: "The curl lines read this Jupyter server's token from $JUPYTER_TOKEN: copy the export line, paste it into your terminal, then paste a curl line.",
    zh: 'curl 命令从 $JUPYTER_TOKEN 读取此 Jupyter 服务器的令牌：先复制 export 命令并粘贴到终端，再粘贴 curl 命令。'
  },
  'copy-export': { en: 'Copy export line', zh: '复制 export 命令' },
  'copy-export-title': {
    en: "Copy export JUPYTER_TOKEN=… with this Jupyter server's token (it is not shown here)",
    zh: '复制带有此 Jupyter 服务器令牌的 export JUPYTER_TOKEN=… 命令（令牌不会在这里显示）'
  },
  'copied-export': { en: 'Copied: paste it into your terminal', zh: '已复制：请粘贴到终端' },
  'curl-token-unknown': {
    en: 'The curl lines read the Jupyter token from $JUPYTER_TOKEN: set it to the token this Jupyter server printed when it started (jupyter server list shows it).',
    zh: 'curl 命令从 $JUPYTER_TOKEN 读取 Jupyter 令牌：请把它设为此 Jupyter 服务器启动时打印的令牌（jupyter server list 可以查看）。'
  },
  'curl-hub': {
    en: "The curl lines read a JupyterHub API token from $JUPYTER_TOKEN: make one on JupyterHub's token page, then run export JUPYTER_TOKEN=<that token> in your terminal.",
    zh: 'curl 命令从 $JUPYTER_TOKEN 读取 JupyterHub API 令牌：请在 JupyterHub 的令牌页面创建一个，然后在终端运行 export JUPYTER_TOKEN=<该令牌>。'
  },
  'hub-token-page': { en: "JupyterHub's token page", zh: 'JupyterHub 令牌页面' },
  'curl-none': {
    en: "This Jupyter server's authentication is off: the curl lines need no token.",
    zh: '此 Jupyter 服务器未启用身份验证：curl 命令不需要令牌。'
  },
  'curl-none-xsrf': {
    en: "This Jupyter server's authentication is off: the curl lines need no token. They send the same value as _xsrf cookie and X-XSRFToken header, which Jupyter's cross-site check asks of a POST without a token.",
    zh: '此 Jupyter 服务器未启用身份验证：curl 命令不需要令牌。它们以相同的值发送 _xsrf cookie 和 X-XSRFToken 请求头，这是 Jupyter 对不带令牌的 POST 请求的跨站检查所要求的。'
  },
  'curl-password': {
    en: 'This Jupyter server logs in with a password, which curl cannot send: start Jupyter with a token (--IdentityProvider.token=…), then export JUPYTER_TOKEN=<that token> to run these lines.',
    zh: '此 Jupyter 服务器使用密码登录，curl 无法发送密码：请用令牌启动 Jupyter（--IdentityProvider.token=…），然后运行 export JUPYTER_TOKEN=<该令牌>，再使用这些命令。'
  },
  'curl-other': {
    en: 'The curl lines read a token this Jupyter server accepts from $JUPYTER_TOKEN: set it before running them.',
    zh: 'curl 命令从 $JUPYTER_TOKEN 读取此 Jupyter 服务器接受的令牌：运行前请先设置它。'
  },
  'hub-title': { en: 'Hub', zh: '中心' },
  'asking-hub': { en: 'Asking the hub…', zh: '正在查询中心…' },
  'no-services': {
    en: 'The hub has no service yet: publish this notebook (AlgoLink: Publish this notebook).',
    zh: '中心还没有模型服务：请发布此笔记本（AlgoLink：发布此笔记本）。'
  },
  'signed-in': { en: 'Signed in to {0} as {1}', zh: '已登录 {0}，身份：{1}' },
  'hub-admin': { en: ', a hub admin', zh: '（中心管理员）' },
  'not-signed-in': {
    en: 'Not signed in to {0}: run `algolink login --hub {0}` in a terminal, then press Refresh.',
    zh: '未登录 {0}：请在终端运行 `algolink login --hub {0}`，然后点击“刷新”。'
  },
  'token-line': { en: 'Token {0}: {1}.', zh: '令牌 {0}：{1}。' },
  'token-project': { en: 'limited to the project {0}', zh: '仅限项目 {0}' },
  'token-service': { en: 'limited to the service {0}', zh: '仅限模型服务 {0}' },
  'token-scopes': { en: 'scopes {0}', zh: '权限范围 {0}' },
  'token-expires': { en: 'expires {0}', zh: '过期时间 {0}' },
  'publish-where': { en: 'You may publish to {0}.', zh: '你可以发布到：{0}。' },
  'a-new-project': { en: 'a new project of your own', zh: '你自己的新项目' },
  'publish-button': { en: 'Publish this notebook', zh: '发布此笔记本' },
  'publish-open-notebook': {
    en: 'Open a notebook to publish it.',
    zh: '请先打开一个笔记本再发布。'
  },
  'cannot-scope': {
    en: 'The token {0} cannot publish: publishing needs the read and write scopes and it has {1}. Run `algolink login` for a token that may write.',
    zh: '令牌 {0} 不能发布：发布需要 read 和 write 权限范围，而它只有 {1}。请运行 `algolink login` 获取可以写入的令牌。'
  },
  'cannot-service': {
    en: 'This token is limited to the service {0}, and publishing from the notebook needs a token for a whole project: run `algolink login` for one that is not limited to a service.',
    zh: '此令牌仅限模型服务 {0}，而从笔记本发布需要整个项目的令牌：请运行 `algolink login` 获取不限于单个模型服务的令牌。'
  },
  'cannot-viewer': {
    en: 'You are a viewer of {0}: you may call the services but not publish. To publish, ask a project owner to make you a developer.',
    zh: '你是 {0} 的查看者：可以调用模型服务，但不能发布。如需发布，请让项目所有者把你设为开发者。'
  },
  'cannot-none': {
    en: 'You may publish to no project on this hub: ask a project owner to make you a developer.',
    zh: '你在此中心没有可以发布的项目：请让项目所有者把你设为开发者。'
  },
  'viewer-note': {
    en: 'You are a viewer of {0}: publishing there needs the developer role (ask a project owner to make you a developer).',
    zh: '你是 {0} 的查看者：在那里发布需要开发者角色（请让项目所有者把你设为开发者）。'
  },
  'no-services-seen': {
    en: 'None of your projects has a service on the hub yet.',
    zh: '你的项目在中心还没有模型服务。'
  },
  'role-viewer': { en: 'viewer', zh: '查看者' },
  'role-developer': { en: 'developer', zh: '开发者' },
  'role-owner': { en: 'owner', zh: '所有者' },
  'role-title': { en: 'Your role in {0}', zh: '你在 {0} 中的角色' },
  'service-page-title': { en: "The service's page on the hub", zh: '该模型服务在中心的页面' },
  version: { en: 'version {0}', zh: '版本 {0}' },
  api: { en: 'API', zh: 'API' },
  'activity-title': {
    en: 'Last hour: {0} requests, {1} failed (5xx); p95 latency {2}',
    zh: '最近一小时：{0} 次请求，{1} 次失败（5xx）；p95 延迟 {2}'
  },
  'activity-none': { en: 'No requests in the last hour', zh: '最近一小时没有请求' },
  'status-registered': { en: 'Registered', zh: '已注册' },
  'status-building': { en: 'Building', zh: '构建中' },
  'status-starting': { en: 'Starting', zh: '启动中' },
  'status-online': { en: 'Online', zh: '已上线' },
  'status-failed': { en: 'Failed', zh: '失败' },
  'status-offline': { en: 'Offline', zh: '已下线' }
} as const;

export type MessageId = keyof typeof MESSAGES;

/** Every message id, for tests. */
export const MESSAGE_IDS = Object.keys(MESSAGES) as MessageId[];

let current: Lang = 'en';

/** The language of a JupyterLab language code: `zh`, `zh-CN`, `zh_CN` are Chinese, the rest English. */
export function languageOf(code: string | null | undefined): Lang {
  return code && /^zh([-_]|$)/i.test(code) ? 'zh' : 'en';
}

export function setLanguage(lang: Lang): void {
  current = lang;
}

export function language(): Lang {
  return current;
}

/** A message in the current language (or `lang`), with `{0}`, `{1}`, ... filled in. */
export function t(id: MessageId, args: (string | number)[] = [], lang: Lang = current): string {
  const template: string = MESSAGES[id][lang];
  return template.replace(/\{(\d+)\}/g, (whole, i) =>
    Number(i) < args.length ? String(args[Number(i)]) : whole
  );
}

/** Joins names as a list in the current language: "a, b" or "a、b". */
export function listText(items: string[], lang: Lang = current): string {
  return items.join(lang === 'zh' ? '、' : ', ');
}

/** The label of a project role (viewer, developer, owner); an unknown one as it is. */
export function roleLabel(role: string, lang: Lang = current): string {
  const id = `role-${role}`;
  return id in MESSAGES ? t(id as MessageId, [], lang) : role;
}

/** The label of a hub service status, as the hub's pages say it; an unknown one as it is. */
export function statusLabel(status: string, lang: Lang = current): string {
  const id = `status-${status}`;
  return id in MESSAGES ? t(id as MessageId, [], lang) : status;
}
