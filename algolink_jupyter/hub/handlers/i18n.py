"""The web UI's message catalogue: English and 简体中文, chosen from the ``lang`` cookie or the
browser's ``Accept-Language``. Every string a page shows comes from here."""

from __future__ import annotations

from typing import Optional

DEFAULT = "en"
LANGUAGES = {"en": "English", "zh_CN": "简体中文"}

MESSAGES: dict = {
    "en": {
        "app": "AlgoLink",
        "sign_in": "Sign in",
        "sign_out": "Sign out",
        "signed_in_as": "Signed in as {name}",
        "token": "Token",
        "token_help": "Paste an API token: the admin token is in the hub's data folder, file "
        "admin_token.",
        "token_bad": "That token is not valid: it is unknown or was revoked.",
        "sign_in_needed": "Sign in to continue.",
        "projects": "Projects",
        "no_projects": "No projects yet: create the first one.",
        "new_project": "New project",
        "name": "Name",
        "type": "Type",
        "version": "Version",
        "description": "Description",
        "create": "Create",
        "created": "Created",
        "type_model": "Model",
        "type_dataset": "Dataset",
        "type_application": "Application",
        "type_other": "Other",
        "name_hint": "Letters, digits, _ and -, no spaces.",
        "version_hint": "Letters, digits, '.', '+' and '-'; no '_'.",
        "name_bad": "A name allows only letters, digits, _ and - (no spaces), at most 64 characters.",
        "version_bad": "A version allows letters, digits, '.', '+' and '-', and no '_'.",
        "model_services": "Model services",
        "groups": "Groups",
        "new_group": "New group",
        "group": "Group",
        "no_groups": "No groups yet: create a group to hold your model services.",
        "no_services": "No model services in this group yet.",
        "service": "Service",
        "status": "Status",
        "open": "Open",
        "publish": "Publish",
        "offline": "Take offline",
        "status_registered": "Registered",
        "status_building": "Building",
        "status_starting": "Starting",
        "status_online": "Online",
        "status_failed": "Failed",
        "status_offline": "Offline",
        "status_development": "Development",
        "dev_badge": "Development mode",
        "dev_served_by": "Served live by",
        "dev_note": "A model server running on your own machine, not a published version: it is "
        "never built or published here, and it answers only while that server runs.",
        "dev_unreachable": "The development server at {url} is not answering: start it again (or "
        "run %algolink connect again in the notebook) and reconnect.",
        "dev_new": "Connect a development server",
        "dev_url": "Model server URL",
        "dev_token": "Its token (if it needs one)",
        "dev_connect": "Connect",
        "e_dev_unreachable": "The development server at {url} is not answering: start it again "
        "and connect it again.",
        "e_dev_url_missing": "The model server URL is missing: give the address your model server "
        "prints, such as http://127.0.0.1:9000.",
        "e_dev_url_bad": "{url} is not a model server URL: give an http:// or https:// address "
        "such as http://127.0.0.1:9000, without a query.",
        "e_dev_refused": "The development server at {url} refused the hub: give the token it needs.",
        "e_dev_url_internal": "{url} leads to this hub or one of its services: give the address "
        "of your own model server (python cloud_model.py or %algolink serve prints it).",
        "e_dev_too_many": "Too many development URLs were tried within a minute: wait a minute "
        "and connect again.",
        "e_dev_not_yours": "This development service was connected by another token: only it (or "
        "the admin) may connect it again.",
        "e_body_too_large": "The request is over this page's limit of {limit}: send less.",
        "e_form_bad": "The form could not be read: send it again.",
        "e_dev_not_manifest": "{url} did not answer like a model server: give the URL of a running "
        "AlgoLink model server.",
        "metadata": "About this model",
        "license": "License",
        "performance": "Performance",
        "links": "Links",
        "gallery": "Gallery",
        "versions": "Versions",
        "api_version": "API version",
        "published_by": "Published by",
        "published_at": "Published at",
        "api": "API",
        "endpoint": "Endpoint",
        "not_published": "Not published yet: press Publish.",
        "log": "Build and run log",
        "language": "Language",
        "not_found": "Not found",
        "error": "Something went wrong",
        "back": "Back to projects",
        "exists": "{name} already exists: choose another name.",
        "try_it": "Try it",
        "run": "Run",
        "no_commands": "The manifest is not known yet: publish the service first.",
        "curl": "Call it with curl",
        "register_service": "Register a model service",
        "bundle": "Bundle (.tar.gz or .zip)",
        "path": "Or a bundle folder on the hub's machine",
        "path_help": "An absolute path, the folder that holds cloud_model.py.",
        "tagline": "Tagline",
        "links_help": "One link a line: a title, a space, then the URL.",
        "images": "Gallery images (the first is the thumbnail)",
        "register": "Register",
        "needs_group": "Create a group first: every model service belongs to a group.",
        "bad_form": "The form was refused: {message}",
        "forbidden_xsrf": "The form expired or came from another site: reload the page and try "
        "again.",
    },
    "zh_CN": {
        "app": "AlgoLink",
        "sign_in": "登录",
        "sign_out": "退出登录",
        "signed_in_as": "当前用户：{name}",
        "token": "令牌",
        "token_help": "粘贴一个 API 令牌：管理员令牌在 hub 数据目录的 admin_token 文件中。",
        "token_bad": "令牌无效：未知或已被吊销。",
        "sign_in_needed": "请先登录。",
        "projects": "项目",
        "no_projects": "还没有项目：新建第一个项目吧。",
        "new_project": "新建项目",
        "name": "名称",
        "type": "类型",
        "version": "版本",
        "description": "描述",
        "create": "创建",
        "created": "创建时间",
        "type_model": "模型",
        "type_dataset": "数据集",
        "type_application": "应用",
        "type_other": "其他",
        "name_hint": "字母、数字、_ 和 -，不能有空格。",
        "version_hint": "字母、数字、'.'、'+' 和 '-'；不允许下划线。",
        "name_bad": "名称只能包含字母、数字、_ 和 -（不能有空格），最多 64 个字符。",
        "version_bad": "版本只能包含字母、数字、'.'、'+' 和 '-'，不允许下划线。",
        "model_services": "模型服务",
        "groups": "分组",
        "new_group": "新建分组",
        "group": "分组",
        "no_groups": "还没有分组：创建分组来区分你的应用。",
        "no_services": "该分组下还没有模型服务。",
        "service": "服务",
        "status": "状态",
        "open": "详情",
        "publish": "上线",
        "offline": "下线",
        "status_registered": "已注册",
        "status_building": "构建中",
        "status_starting": "启动中",
        "status_online": "已上线",
        "status_failed": "失败",
        "status_offline": "已下线",
        "status_development": "开发中",
        "dev_badge": "开发模式",
        "dev_served_by": "实时服务来自",
        "dev_note": "这是运行在你自己机器上的模型服务器，而不是已发布的版本：它不会在这里构建或上线，"
        "只有在该服务器运行时才会应答。",
        "dev_unreachable": "位于 {url} 的开发服务器没有应答：请重新启动它（或在笔记本中再次运行 "
        "%algolink connect）并重新连接。",
        "dev_new": "连接开发服务器",
        "dev_url": "模型服务器地址",
        "dev_token": "它的令牌（如需要）",
        "dev_connect": "连接",
        "e_dev_unreachable": "位于 {url} 的开发服务器没有应答：请重新启动它并再次连接。",
        "e_dev_url_missing": "缺少模型服务器地址：请填写模型服务器打印的地址，例如 http://127.0.0.1:9000。",
        "e_dev_url_bad": "{url} 不是模型服务器地址：请填写 http:// 或 https:// 地址，例如 "
        "http://127.0.0.1:9000，不要带查询参数。",
        "e_dev_refused": "位于 {url} 的开发服务器拒绝了中心的请求：请填写它需要的令牌。",
        "e_dev_url_internal": "{url} 指向本中心或它的某个服务：请填写您自己的模型服务器地址"
        "（python cloud_model.py 或 %algolink serve 会打印它）。",
        "e_dev_too_many": "一分钟内尝试的开发地址过多：请等一分钟再连接。",
        "e_dev_not_yours": "这个开发服务是由另一个令牌连接的：只有它（或管理员）可以重新连接。",
        "e_body_too_large": "请求超过了此页面 {limit} 的上限：请发送更少的内容。",
        "e_form_bad": "无法读取表单：请重新提交。",
        "e_dev_not_manifest": "{url} 的应答不像模型服务器：请填写正在运行的 AlgoLink 模型服务器的地址。",
        "metadata": "模型信息",
        "license": "许可证",
        "performance": "性能说明",
        "links": "链接",
        "gallery": "图库",
        "versions": "版本",
        "api_version": "API 版本",
        "published_by": "发布者",
        "published_at": "发布时间",
        "api": "API",
        "endpoint": "接口地址",
        "not_published": "尚未上线：请点击“上线”。",
        "log": "构建和运行日志",
        "language": "语言",
        "not_found": "未找到",
        "error": "出错了",
        "back": "返回项目列表",
        "exists": "{name} 已存在：请换一个名称。",
        "try_it": "在线试用",
        "run": "运行",
        "no_commands": "尚未获得服务清单：请先上线该服务。",
        "curl": "用 curl 调用",
        "register_service": "注册模型服务",
        "bundle": "服务包（.tar.gz 或 .zip）",
        "path": "或者 hub 所在机器上的服务目录",
        "path_help": "绝对路径，即 cloud_model.py 所在的目录。",
        "tagline": "一句话简介",
        "links_help": "每行一个链接：标题、空格、然后是网址。",
        "images": "图库图片（第一张作为缩略图）",
        "register": "注册",
        "needs_group": "请先创建分组：每个模型服务都属于一个分组。",
        "bad_form": "表单被拒绝：{message}",
        "forbidden_xsrf": "表单已过期或来自其他网站：请刷新页面后重试。",
    },
}


def pick(cookie: Optional[str], accept_language: str) -> str:
    """The language: the ``lang`` cookie if it names one we have, else the browser's first
    acceptable one (by q-value), else English."""
    if cookie in MESSAGES:
        return cookie
    choices = []
    for i, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        choices.append((-q, i, tag.strip().lower().replace("_", "-")))
    for _, _, tag in sorted(choices):
        if tag.startswith("zh"):
            return "zh_CN"
        if tag.startswith("en"):
            return "en"
    return DEFAULT


def translator(lang: str):
    table = MESSAGES.get(lang, MESSAGES[DEFAULT])

    def t(key: str, **kw: object) -> str:
        text = table.get(key) or MESSAGES[DEFAULT].get(key) or key
        return text.format(**kw) if kw else text

    return t


# The sentences of errors raised by the hub's shared logic (``APIError(..., key, **params)`` and
# ``BundleError``), message ``e_<key>``, and the pages for versions, the model card and tokens.
MORE: dict = {
    "en": {
        "kind_project": "project",
        "kind_group": "group",
        "kind_service": "service",
        "kind_token": "token",
        "e_name_missing": "The {kind} name is missing: give a name of letters, digits, _ and -.",
        "e_name_type": "The {kind} name must be text, got {value}: give a name of letters, "
        "digits, _ and -.",
        "e_name_space": "The {kind} name '{value}' has a space: a name allows only letters, "
        "digits, _ and -, no spaces.",
        "e_name_char": "The {kind} name '{value}' has '{bad}': a name allows only letters, "
        "digits, _ and -.",
        "e_name_long": "The {kind} name '{value}' is too long: a name has at most {max} "
        "characters.",
        "e_version_missing": "The version is missing: give a version such as '1.0'.",
        "e_version_type": "The version must be text such as '1.0', got {value}.",
        "e_version_underscore": "The version '{value}' has '_': a version allows no '_' (use "
        "'.' or '-').",
        "e_version_space": "The version '{value}' has a space: a version allows no spaces.",
        "e_version_bad": "The version '{value}' is not allowed: use letters, digits, '.', '+' "
        "and '-' (at most {max} characters).",
        "e_group_missing": "Project '{project}' has no group '{name}': create the group first.",
        "e_metadata_json": "The metadata is not valid JSON: send a JSON object.",
        "e_metadata_type": "The metadata must be an object with fields such as tagline and "
        "license.",
        "e_metadata_text": "The field '{field}' must be text: type it as plain text.",
        "e_metadata_links": "The links must be a list of a title and a URL each: write one "
        "link a line.",
        "e_image_bad": "'{name}' is not an image the hub can show: give a PNG, JPEG, GIF or "
        "WebP file under 20 MB.",
        "e_no_bundle": "No bundle was given: upload a .tar.gz or .zip file, or give a bundle "
        "folder on the hub's machine.",
        "e_folder_bad": "'{path}' is not a folder on the hub's machine: give the absolute path "
        "of a bundle folder, or upload the bundle.",
        "e_no_entry": "The bundle has no cloud_model.py at its top: put cloud_model.py at the "
        "top of the bundle folder and pack it again.",
        "e_not_archive": "The uploaded file is not a .tar.gz, .tgz, .tar or .zip archive: "
        "upload one of those.",
        "e_bundle_refused": "The bundle was refused ({detail}): fix it and upload it again.",
        "e_service_exists": "Project '{project}' already has a service '{name}': choose another "
        "name, or upload a new version on that service's page.",
        "e_token_admin": "The token name 'admin' is kept for the hub's admin token: choose "
        "another name.",
        "e_try_unreachable": "The service did not answer: read its log below, then try again.",
        "publish_failed": "Publishing version {version} failed: read the build and run log "
        "below, fix the bundle and upload a new version.",
        "service_failed": "The service failed: read the build and run log below.",
        "service_restarting": "The service's process stopped and is being restarted: read the "
        "log below.",
        "details": "Details",
        "tokens": "Tokens",
        "api_tokens": "API tokens",
        "new_token": "New token",
        "token_name_help": "A name to recognise it by, for example ci or alice.",
        "prefix": "Starts with",
        "last_used": "Last used",
        "never": "never",
        "active": "Active",
        "revoked": "Revoked",
        "revoke": "Revoke",
        "token_created": "Token {name} is created. Copy it now: the hub shows it only this once.",
        "token_revoked": "Token {name} is revoked: it no longer works and its sessions have ended.",
        "admin_not_revocable": "The admin token cannot be revoked here: delete the admin_token "
        "file in the hub's data folder and restart the hub to replace it.",
        "token_unknown": "There is no token {id}: reload the tokens page.",
        "to_tokens": "Back to the tokens",
        "upload_version": "Upload a new version",
        "upload": "Upload",
        "version_help": "A new version is built at once and served only once you publish it.",
        "rollback": "Roll back",
        "image": "Image",
        "image_help": "Build a container image of this version (docker load / podman load)",
        "image_building": "image building…",
        "image_failed": "image failed",
        "image_download": "download",
        "image_log": "log",
        "image_digest": "Image {digest}",
        "image_not_built": "Version {number} has not been built yet: publish it once, then make "
        "its image.",
        "image_no_version": "There is no version {number}.",
        "current": "serving",
        "edit_metadata": "Edit the model card",
        "save": "Save",
        "cancel": "Cancel",
        "preview": "Preview",
        "name_fixed": "The name is fixed: register a new service to use another one.",
        "images_replace": "New gallery images (they replace the current ones; leave empty to "
        "keep them)",
    },
    "zh_CN": {
        "kind_project": "项目",
        "kind_group": "分组",
        "kind_service": "服务",
        "kind_token": "令牌",
        "e_name_missing": "{kind}名称为空：请填写由字母、数字、_ 和 - 组成的名称。",
        "e_name_type": "{kind}名称必须是文本，收到的是 {value}：请填写由字母、数字、_ 和 - 组成的"
        "名称。",
        "e_name_space": "{kind}名称“{value}”包含空格：名称只能包含字母、数字、_ 和 -，不能有空格。",
        "e_name_char": "{kind}名称“{value}”包含“{bad}”：名称只能包含字母、数字、_ 和 -。",
        "e_name_long": "{kind}名称“{value}”太长：名称最多 {max} 个字符。",
        "e_version_missing": "版本为空：请填写版本，例如“1.0”。",
        "e_version_type": "版本必须是文本，例如“1.0”，收到的是 {value}。",
        "e_version_underscore": "版本“{value}”包含“_”：版本不允许下划线（请用“.”或“-”）。",
        "e_version_space": "版本“{value}”包含空格：版本不能有空格。",
        "e_version_bad": "版本“{value}”不合法：只能使用字母、数字、“.”、“+”和“-”（最多 {max} 个"
        "字符）。",
        "e_group_missing": "项目“{project}”没有分组“{name}”：请先创建该分组。",
        "e_metadata_json": "元数据不是合法的 JSON：请提交一个 JSON 对象。",
        "e_metadata_type": "元数据必须是一个对象，包含一句话简介、许可证等字段。",
        "e_metadata_text": "字段“{field}”必须是文本：请填写纯文本。",
        "e_metadata_links": "链接必须是由标题和网址组成的列表：请每行写一个链接。",
        "e_image_bad": "“{name}”不是 hub 可以显示的图片：请上传不超过 20 MB 的 PNG、JPEG、GIF 或 "
        "WebP 文件。",
        "e_no_bundle": "没有提供服务包：请上传 .tar.gz 或 .zip 文件，或填写 hub 所在机器上的服务"
        "目录。",
        "e_folder_bad": "“{path}”不是 hub 所在机器上的目录：请填写服务目录的绝对路径，或上传服务包。",
        "e_no_entry": "服务包顶层没有 cloud_model.py：请把 cloud_model.py 放在服务目录的顶层后重新"
        "打包。",
        "e_not_archive": "上传的文件不是 .tar.gz、.tgz、.tar 或 .zip 压缩包：请上传这几种格式之一。",
        "e_bundle_refused": "服务包被拒绝（{detail}）：请修正后重新上传。",
        "e_service_exists": "项目“{project}”已有服务“{name}”：请换一个名称，或在该服务的页面上传"
        "新版本。",
        "e_token_admin": "令牌名称“admin”保留给 hub 的管理员令牌：请换一个名称。",
        "e_try_unreachable": "服务没有响应：请查看下方日志后重试。",
        "publish_failed": "版本 {version} 上线失败：请查看下方的构建和运行日志，修正服务包后上传"
        "新版本。",
        "service_failed": "服务运行失败：请查看下方的构建和运行日志。",
        "service_restarting": "服务进程已停止，正在重新启动：请查看下方日志。",
        "details": "详细信息",
        "tokens": "令牌",
        "api_tokens": "API 令牌",
        "new_token": "新建令牌",
        "token_name_help": "用来识别它的名称，例如 ci 或 alice。",
        "prefix": "开头",
        "last_used": "最近使用",
        "never": "从未",
        "active": "有效",
        "revoked": "已吊销",
        "revoke": "吊销",
        "token_created": "已创建令牌 {name}。请立即复制：hub 只显示这一次。",
        "token_revoked": "令牌 {name} 已吊销：它不再可用，使用它的登录会话也已结束。",
        "admin_not_revocable": "不能在这里吊销管理员令牌：请删除 hub 数据目录中的 admin_token "
        "文件并重启 hub 来更换它。",
        "token_unknown": "没有编号为 {id} 的令牌：请刷新令牌页面。",
        "to_tokens": "返回令牌列表",
        "upload_version": "上传新版本",
        "upload": "上传",
        "version_help": "新版本会立即构建，只有点击“上线”后才会对外服务。",
        "rollback": "回滚",
        "image": "镜像",
        "image_help": "为此版本构建容器镜像（docker load / podman load）",
        "image_building": "镜像构建中…",
        "image_failed": "镜像构建失败",
        "image_download": "下载",
        "image_log": "日志",
        "image_digest": "镜像 {digest}",
        "image_not_built": "版本 {number} 尚未构建：请先上线一次，再构建它的镜像。",
        "image_no_version": "没有版本 {number}。",
        "current": "服务中",
        "edit_metadata": "编辑模型信息",
        "save": "保存",
        "cancel": "取消",
        "preview": "预览",
        "name_fixed": "名称不可修改：如需其他名称，请注册新的服务。",
        "images_replace": "新的图库图片（会替换现有图片；留空则保留）",
    },
}
for _lang, _table in MORE.items():
    MESSAGES[_lang].update(_table)


# Setup options and their uploaded files (templates/_options.html, static/options.js).
MESSAGES["en"].update(
    {
        "opt_title": "Setup options",
        "opt_unknown": "The options are not known yet: they are read from the bundle once it is "
        "built.",
        "opt_none": "This model declares no setup options.",
        "opt_help": "Values and files for setup(). Saving makes a new version from version "
        "{version} with these values; publish it like any other, and publish an older one to go "
        "back.",
        "opt_default": "Default",
        "opt_limits": "Rules",
        "opt_value": "Value",
        "opt_extensions": "files: {ext}",
        "opt_current_file": "Now: {name} ({sha})",
        "opt_publish_now": "Publish the new version at once",
        "opt_save": "Save as a new version",
        "opt_uploading": "Uploading…",
        "opt_saved": "Version {version} has the new options.",
        "opt_refused": "Not saved: {message}",
        "opt_nothing": "Nothing to save: set a value or choose a file first.",
        "opt_resuming": "The connection broke: resuming the upload where it stopped.",
        "e_opt_unknown_option": "There is no setup option '{option}': this service's options are "
        "{known}.",
        "e_opt_not_file": "The setup option '{option}' takes no file: set its value instead.",
        "e_opt_extension": "The setup option '{option}' takes files ending in {ext}, got "
        "'{filename}': choose a file with one of those extensions.",
        "e_opt_rule": "The value of option '{option}' {reason}: give a value that fits its rule.",
        "e_opt_no_file": "The file of option '{option}' is not on the hub: upload it again.",
        "e_opt_too_large": "The file '{filename}' for option '{option}' is {size}, over the hub's "
        "limit of {limit}: choose a smaller file.",
        "e_opt_not_known": "The options of version {version} are not known yet: wait until its "
        "bundle is built, then try again.",
    }
)
MESSAGES["zh_CN"].update(
    {
        "opt_title": "设置项",
        "opt_unknown": "尚不知道设置项：服务包构建完成后才会读取。",
        "opt_none": "该模型没有声明设置项。",
        "opt_help": "setup() 的取值和文件。保存后会以版本 {version} 为基础生成一个带有这些取值的新版本；"
        "像其他版本一样上线即可，上线旧版本即可回退。",
        "opt_default": "默认值",
        "opt_limits": "规则",
        "opt_value": "取值",
        "opt_extensions": "文件：{ext}",
        "opt_current_file": "当前：{name}（{sha}）",
        "opt_publish_now": "立即上线新版本",
        "opt_save": "保存为新版本",
        "opt_uploading": "正在上传……",
        "opt_saved": "版本 {version} 已使用新的设置项。",
        "opt_refused": "未保存：{message}",
        "opt_nothing": "没有可保存的内容：请先填写取值或选择文件。",
        "opt_resuming": "连接中断：正在从中断处继续上传。",
        "e_opt_unknown_option": "没有名为 '{option}' 的设置项：该服务的设置项是 {known}。",
        "e_opt_not_file": "设置项 '{option}' 不接受文件：请直接填写它的取值。",
        "e_opt_extension": "设置项 '{option}' 只接受扩展名为 {ext} 的文件，收到的是 '{filename}'："
        "请选择扩展名正确的文件。",
        "e_opt_rule": "设置项 '{option}' 的取值不符合规则（{reason}）：请按规则填写。",
        "e_opt_no_file": "设置项 '{option}' 的文件不在 hub 上：请重新上传。",
        "e_opt_too_large": "设置项 '{option}' 的文件 '{filename}' 大小为 {size}，超过了 hub 的上限 "
        "{limit}：请选择更小的文件。",
        "e_opt_not_known": "尚不知道版本 {version} 的设置项：请等服务包构建完成后再试。",
    }
)

# Versions that stay versions (issue 14): API versions, aliases, deleting, the log per version.
MESSAGES["en"].update(
    {
        "publish_n": "Publish version {number}",
        "serving_n": "Version {number} is online",
        "online_version": "version {number} online as {api}",
        "online_version_col": "Online",
        "api_versions": "API versions",
        "api_versions_help": "Each stays callable; one that is not running starts on its first "
        "request and stops after {minutes} minutes without one.",
        "api_versions_help_always": "Each stays callable; once started, it keeps running.",
        "process": "Process",
        "process_online": "running",
        "process_starting": "starting",
        "process_restarting": "restarting",
        "process_stopped": "stopped",
        "token_env_help": "The service is not public: set ALGOLINK_TOKEN to a token of this hub "
        "(make one on the {link} page; it is shown once), then copy a line.",
        "your_token": "your token",
        "aliases": "Aliases",
        "aliases_help": "A name for a version, callable at /serve/project/service/@name/: point "
        "stable or canary at the version you choose.",
        "alias_set": "Set",
        "delete": "Delete",
        "confirm_delete_version": "Delete version {number}? Its logs and working copy go; its API "
        "version is never given again.",
        "confirm_delete_alias": "Delete the alias @{name}? Clients calling it get 404.",
        "confirm_delete_group": "Delete the empty group {name}?",
        "confirm_delete_service": "Delete {name} with every version, alias and log? Its processes "
        "stop. Type the service's name to confirm:",
        "confirm_delete_project": "Delete the project {name} with every group and service? Their "
        "processes stop. Type the project's name to confirm:",
        "confirm_needed": "Nothing was deleted: confirm it first.",
        "confirm_name_needed": "Nothing was deleted: type {name} to confirm.",
        "danger_zone": "Delete",
        "delete_service": "Delete this service",
        "delete_service_help": "Stops its processes and removes its versions, aliases, logs and "
        "working copies; bundles, files and environments no other service uses are removed too.",
        "delete_project": "Delete this project",
        "delete_project_help": "Removes every group and service of the project (their processes "
        "stop first).",
        "delete_group": "Delete the group",
        "log_of": "Log of",
        "keep_warm": "Keep warm (seconds)",
        "keep_warm_help": "How long a version that is not online keeps running after its last "
        "request (pinned /vN/ and @alias clients); 0 keeps it running.",
        "e_version_online": "Version {number} is online: publish another version (or take the "
        "service offline) before deleting it.",
        "e_version_busy": "Version {number} is being built or started: wait until it is done.",
        "e_version_aliased": "Version {number} is named by {aliases}: point them at another "
        "version or delete them first.",
        "e_group_not_empty": "The group {group} still has services ({services}): delete them "
        "first.",
        "e_alias_unbuilt": "That version has not been built yet: an alias names a version that "
        "can run.",
        "e_keep_warm_bad": "Keep warm is whole seconds from 0 to 604800 (a week).",
        "e_port_gone": "The hub no longer takes a port: leave it out.",
    }
)
MESSAGES["zh_CN"].update(
    {
        "publish_n": "上线版本 {number}",
        "serving_n": "版本 {number} 服务中",
        "online_version": "版本 {number} 以 {api} 服务中",
        "online_version_col": "在线版本",
        "api_versions": "API 版本",
        "api_versions_help": "每个 API 版本都一直可以调用；未运行的版本在第一次请求时启动，"
        "{minutes} 分钟无请求后停止。",
        "api_versions_help_always": "每个 API 版本都一直可以调用；启动后一直运行。",
        "process": "进程",
        "process_online": "运行中",
        "process_starting": "启动中",
        "process_restarting": "重启中",
        "process_stopped": "已停止",
        "token_env_help": "该服务不是公开的：先把 ALGOLINK_TOKEN 设为本 hub 的一个令牌（在{link}页面"
        "新建，只显示一次），再复制下面的命令。",
        "your_token": "你的令牌",
        "aliases": "别名",
        "aliases_help": "给某个版本起名，通过 /serve/项目/服务/@名称/ 调用：例如把 stable 或 canary "
        "指向你选定的版本。",
        "alias_set": "设置",
        "delete": "删除",
        "confirm_delete_version": "删除版本 {number}？它的日志和工作副本会被删除；它的 API 版本号不会"
        "再分配。",
        "confirm_delete_alias": "删除别名 @{name}？调用它的客户端会得到 404。",
        "confirm_delete_group": "删除空分组 {name}？",
        "confirm_delete_service": "删除 {name} 及其所有版本、别名和日志？它的进程会停止。请输入服务名称"
        "确认：",
        "confirm_delete_project": "删除项目 {name} 及其所有分组和服务？它们的进程会停止。请输入项目名称"
        "确认：",
        "confirm_needed": "没有删除任何内容：请先确认。",
        "confirm_name_needed": "没有删除任何内容：请输入 {name} 确认。",
        "danger_zone": "删除",
        "delete_service": "删除此服务",
        "delete_service_help": "停止它的进程，删除它的版本、别名、日志和工作副本；其他服务不用的服务包、"
        "文件和环境也会一并删除。",
        "delete_project": "删除此项目",
        "delete_project_help": "删除项目的所有分组和服务（先停止它们的进程）。",
        "delete_group": "删除分组",
        "log_of": "日志版本",
        "keep_warm": "保温时间（秒）",
        "keep_warm_help": "非在线版本在最后一次请求后继续运行的时间（供固定 /vN/ 和 @别名 的客户端"
        "使用）；0 表示一直运行。",
        "e_version_online": "版本 {number} 正在服务：删除前请先上线其他版本（或下线服务）。",
        "e_version_busy": "版本 {number} 正在构建或启动：请等它完成。",
        "e_version_aliased": "版本 {number} 被别名 {aliases} 引用：请先把它们指向其他版本或删除。",
        "e_group_not_empty": "分组 {group} 中还有服务（{services}）：请先删除它们。",
        "e_alias_unbuilt": "该版本尚未构建完成：别名只能指向可以运行的版本。",
        "e_keep_warm_bad": "保温时间是 0 到 604800（一周）之间的整数秒。",
        "e_port_gone": "hub 不再接受端口：请不要填写端口。",
    }
)

# Users, roles and scoped tokens (issue 15): sign-in, the users and account pages, members.
MESSAGES["en"].update(
    {
        "token_help": "An API token instead of a password: the hub's admin token is in its data "
        "folder, file admin_token; make your own on the tokens page.",
        "user_name": "User name",
        "signed_in_token": "token {name}",
        "password": "Password",
        "sign_in_token": "Sign in with an API token instead",
        "sign_in_bad": "That user name and password do not match: check both and try again.",
        "sign_in_locked": "Too many wrong passwords: this account is locked for {minutes} minutes. "
        "Try again later, or ask a hub admin to set a new password.",
        "sign_in_disabled": "This account is disabled: ask a hub admin to enable it.",
        "sign_in_throttled": "Too many sign-in attempts from your address: wait a minute and try "
        "again.",
        "users": "Users",
        "account": "Account",
        "display_name": "Display name",
        "last_login": "Last sign-in",
        "disabled": "Disabled",
        "locked": "Locked",
        "enable": "Enable",
        "disable": "Disable",
        "new_password": "New password",
        "new_user": "New user",
        "new_user_password_help": "At least 8 characters; leave empty and the hub makes one up "
        "and shows it once.",
        "user_password_once": "User {name} is created with the password below. Give it to them "
        "now: the hub shows it only this once.",
        "admin_badge": "admin",
        "confirm_delete_user": "Delete user {name}? Their tokens stop working and they leave "
        "every project; what they published stays.",
        "role": "Role",
        "role_viewer": "Viewer",
        "role_developer": "Developer",
        "role_owner": "Owner",
        "members": "Members",
        "add_member": "Add member",
        "remove_member": "Remove",
        "roles_help": "A viewer sees the project and tries its services; a developer also "
        "registers, uploads versions, publishes, takes offline and reads logs and options; an "
        "owner also manages members and deletes.",
        "no_memberships": "You are a member of no project yet: ask a project's owner to add you.",
        "admin_sees_all": "As a hub admin you see and manage every project.",
        "change_password": "Change password",
        "old_password": "Current password",
        "repeat_password": "New password again",
        "password_change_help": "At least 8 characters. Your other sign-ins end when it changes.",
        "password_mismatch": "The two new passwords differ: type the same one twice.",
        "account_saved": "Saved.",
        "audit": "Audit",
        "when": "When",
        "who": "Who",
        "what": "What",
        "from": "From",
        "token_scopes": "Scopes",
        "token_all_scopes": "all of yours",
        "token_limit": "Limit to",
        "token_limit_help": "Optional: a project (my-project) or one service (my-project/my-service).",
        "token_days": "Expires after (days)",
        "token_scopes_help": "None ticked: all you may do. A token never has more than you.",
        "scope_read": "see projects, services, versions and members",
        "scope_invoke": "call services (/serve, try it)",
        "scope_write": "register, upload, publish, options, logs",
        "scope_manage": "members and deleting",
        "scope_admin": "users and the whole hub (admins)",
        "expires": "Expires",
        "e_scope_missing": "This needs a token with the '{scope}' scope: sign in with your "
        "password or use a token that has it.",
        "e_role_needed": "This needs the {role} role in project {project}: ask one of its owners.",
        "e_admin_needed": "Only a hub admin may do this.",
        "e_token_limited": "This session's token is limited to one project or service: sign in "
        "with your password to do this.",
        "e_sign_in_needed": "Sign in to continue.",
        "e_project_missing": "Not found: there is no such project, or you may not see it.",
        "e_expiry_bad": "The expiry is a whole number of days from 1 to 3650, or empty.",
        "e_scopes_bad": "The scopes are some of read, invoke, write, manage, admin and metrics, none "
        "wider "
        "than yours.",
        "e_user_exists": "There is a user {name} already: choose another name.",
        "e_user_missing": "There is no user {name}: a hub admin adds users on the users page.",
        "e_member_exists": "{user} is a {role} of {project} already: change the role instead.",
        "e_last_owner": "{user} is the last owner of {project}: make someone else an owner first.",
        "e_role_bad": "The role must be viewer, developer or owner.",
        "e_password_bad": "A password has 8 to 1024 characters: type another one.",
        "e_old_password_bad": "The current password is wrong: type it again.",
        "e_token_refused": "That token no longer works (unknown, revoked or expired): sign in "
        "again.",
    }
)
MESSAGES["zh_CN"].update(
    {
        "token_help": "用 API 令牌代替密码登录：hub 的管理员令牌在数据目录的 admin_token 文件中；"
        "你自己的令牌在“令牌”页面创建。",
        "user_name": "用户名",
        "signed_in_token": "令牌 {name}",
        "password": "密码",
        "sign_in_token": "改用 API 令牌登录",
        "sign_in_bad": "用户名和密码不匹配：请检查后重试。",
        "sign_in_locked": "密码错误次数过多：该账户已锁定 {minutes} 分钟。请稍后再试，或请 hub "
        "管理员设置新密码。",
        "sign_in_disabled": "该账户已停用：请联系 hub 管理员启用。",
        "sign_in_throttled": "来自你的地址的登录尝试过多：请等一分钟再试。",
        "users": "用户",
        "account": "账户",
        "display_name": "显示名称",
        "last_login": "上次登录",
        "disabled": "已停用",
        "locked": "已锁定",
        "enable": "启用",
        "disable": "停用",
        "new_password": "新密码",
        "new_user": "新建用户",
        "new_user_password_help": "至少 8 个字符；留空则由 hub 生成并只显示一次。",
        "user_password_once": "已创建用户 {name}，密码如下。请立即转交：hub 只显示这一次。",
        "admin_badge": "管理员",
        "confirm_delete_user": "删除用户 {name}？其令牌将失效，并退出所有项目；其发布的内容保留。",
        "role": "角色",
        "role_viewer": "查看者",
        "role_developer": "开发者",
        "role_owner": "所有者",
        "members": "成员",
        "add_member": "添加成员",
        "remove_member": "移除",
        "roles_help": "查看者可以查看项目并试用其服务；开发者还可以注册、上传版本、上线、下线，并"
        "查看日志和选项；所有者还可以管理成员和删除。",
        "no_memberships": "你还不是任何项目的成员：请项目所有者添加你。",
        "admin_sees_all": "作为 hub 管理员，你可以查看和管理所有项目。",
        "change_password": "修改密码",
        "old_password": "当前密码",
        "repeat_password": "再次输入新密码",
        "password_change_help": "至少 8 个字符。修改后你在其他地方的登录会结束。",
        "password_mismatch": "两次输入的新密码不一致：请输入相同的密码。",
        "account_saved": "已保存。",
        "audit": "审计日志",
        "when": "时间",
        "who": "操作者",
        "what": "操作",
        "from": "来源",
        "token_scopes": "权限范围",
        "token_all_scopes": "你的全部权限",
        "token_limit": "限定于",
        "token_limit_help": "可选：一个项目（my-project）或一个服务（my-project/my-service）。",
        "token_days": "有效期（天）",
        "token_scopes_help": "不勾选则为你的全部权限。令牌的权限永远不超过你本人。",
        "scope_read": "查看项目、服务、版本和成员",
        "scope_invoke": "调用服务（/serve、试用）",
        "scope_write": "注册、上传、上线、设置项、日志",
        "scope_manage": "成员与删除",
        "scope_admin": "用户与整个 hub（管理员）",
        "expires": "过期时间",
        "e_scope_missing": "此操作需要带有“{scope}”权限范围的令牌：请用密码登录，或换一个具有该权限"
        "的令牌。",
        "e_role_needed": "此操作需要项目 {project} 中的{role}角色：请联系该项目的所有者。",
        "e_admin_needed": "只有 hub 管理员可以执行此操作。",
        "e_token_limited": "本次登录所用的令牌限定于一个项目或服务：请用密码登录后再操作。",
        "e_sign_in_needed": "请先登录。",
        "e_project_missing": "未找到：没有这个项目，或者你无权查看。",
        "e_expiry_bad": "有效期是 1 到 3650 之间的整数天，或留空。",
        "e_scopes_bad": "权限范围取自 read、invoke、write、manage、admin 和 metrics，且不能超过你本人的"
        "权限。",
        "e_user_exists": "已有用户 {name}：请换一个名称。",
        "e_user_missing": "没有用户 {name}：由 hub 管理员在“用户”页面添加用户。",
        "e_member_exists": "{user} 已经是 {project} 的{role}：请改为修改角色。",
        "e_last_owner": "{user} 是 {project} 的最后一位所有者：请先让其他人成为所有者。",
        "e_role_bad": "角色必须是 viewer（查看者）、developer（开发者）或 owner（所有者）。",
        "e_password_bad": "密码长度为 8 到 1024 个字符：请换一个。",
        "e_old_password_bad": "当前密码不正确：请重新输入。",
        "e_token_refused": "该令牌已不可用（未知、已吊销或已过期）：请重新登录。",
    }
)

# Times shown as how long ago (or how soon), the exact time on hover: ``when`` in pages.py.
MESSAGES["en"].update(
    {
        "when_now": "just now",
        "when_ago_minute": "{n} minute ago",
        "when_ago_minutes": "{n} minutes ago",
        "when_ago_hour": "{n} hour ago",
        "when_ago_hours": "{n} hours ago",
        "when_ago_day": "{n} day ago",
        "when_ago_days": "{n} days ago",
        "when_in_minute": "in {n} minute",
        "when_in_minutes": "in {n} minutes",
        "when_in_hour": "in {n} hour",
        "when_in_hours": "in {n} hours",
        "when_in_day": "in {n} day",
        "when_in_days": "in {n} days",
    }
)
MESSAGES["zh_CN"].update(
    {
        "when_now": "刚刚",
        "when_ago_minute": "{n} 分钟前",
        "when_ago_minutes": "{n} 分钟前",
        "when_ago_hour": "{n} 小时前",
        "when_ago_hours": "{n} 小时前",
        "when_ago_day": "{n} 天前",
        "when_ago_days": "{n} 天前",
        "when_in_minute": "{n} 分钟后",
        "when_in_minutes": "{n} 分钟后",
        "when_in_hour": "{n} 小时后",
        "when_in_hours": "{n} 小时后",
        "when_in_day": "{n} 天后",
        "when_in_days": "{n} 天后",
    }
)


def relative_time(seconds: float, t) -> str:
    """``seconds`` since a moment (negative: until it) in words of the page's language: "just now",
    "3 minutes ago", "in 2 days"; past 30 days, None (the date is shown instead)."""
    ahead = seconds < 0
    left = abs(seconds)
    if left < 60:
        return t("when_now")
    for unit, size in (("minute", 60), ("hour", 3600), ("day", 86400)):
        n = int(left // size)
        bigger = {"minute": 60, "hour": 24, "day": 30}[unit]
        if n < bigger:
            key = f"when_{'in' if ahead else 'ago'}_{unit}{'' if n == 1 else 's'}"
            return t(key, n=n)
    return ""


# The API docs page of a service (Swagger UI).
MESSAGES["en"].update(
    {
        "api_docs": "API docs",
        "api_docs_link": "API docs: every command's request and answer, with Try it out",
        "api_docs_help": "Every command of the service, its request and its answer. Try it out runs "
        "here as you (the page's sign-in); clients call {url} with a token.",
        "api_docs_missing": "The API docs viewer (Swagger UI) is not installed with this hub: "
        "reinstall it with make install (npm builds it).",
        "api_docs_server": "this page's try-it route",
    }
)
MESSAGES["zh_CN"].update(
    {
        "api_docs": "API 文档",
        "api_docs_link": "API 文档：每个命令的请求与响应，可直接试用",
        "api_docs_help": "服务的每个命令及其请求和响应。“Try it out”以你的身份（本页登录）在此运行；"
        "客户端使用令牌调用 {url}。",
        "api_docs_missing": "本 hub 未安装 API 文档查看器（Swagger UI）：请用 make install 重新安装"
        "（由 npm 构建）。",
        "api_docs_server": "本页的试用路由",
    }
)

# The try-it form's hints, examples and shareable links, and the shared result page.
MESSAGES["en"].update(
    {
        "hint_between": "{lo} to {hi}",
        "hint_at_least": "at least {n}",
        "hint_at_most": "at most {n}",
        "hint_step": "step {step}",
        "hint_characters": "{span} characters",
        "hint_channels_1": "grayscale",
        "hint_channels_3": "RGB",
        "hint_channels_4": "RGBA",
        "hint_pixels": "{width}×{height} pixels",
        "hint_width": "width {span} pixels",
        "hint_height": "height {span} pixels",
        "hint_extensions": "a {names} file",
        "hint_archive": "a .zip or .tar.gz of the folder",
        "hint_vector": "{n} numbers, as JSON",
        "hint_list": "a JSON list of {item} values",
        "hint_point": "[x, y] from 0 to 1, as JSON",
        "hint_box": "[xmin, ymin, xmax, ymax] from 0 to 1, as JSON",
        "hint_landmarks": "{n} points [x, y] from 0 to 1, as JSON",
        "hint_any": "any JSON value",
        "hint_default": "default: {value}",
        "try_examples": "Examples:",
        "try_example_n": "Example {number}",
        "try_share": "Keep the result behind a shareable link",
        "try_share_help": "The hub keeps this run's inputs and outputs for {days} days; anyone "
        "with the link can see them.",
        "try_share_link": "Shareable link:",
        "try_share_not_kept": "The result is too large to keep behind a link.",
        "try_share_delete": "Delete the link",
        "try_share_deleted": "The link is deleted: the result is no longer kept.",
        "try_copy": "Copy",
        "try_copied": "Copied",
        "try_download": "Download",
        "try_bytes": "{size} bytes",
        "result_title": "A result of {service}",
        "result_lead": "{command} of {service}, version {version}, run {made}; kept until {expires}.",
        "result_inputs": "Inputs",
        "result_outputs": "Outputs",
        "result_open_service": "Open the service to try it yourself",
        "scope_metrics": "GET /metrics and the charts (Prometheus)",
        "metrics": "Requests",
        "metrics_help": "Every call through /serve, by version; a version's line begins when it "
        "was published. Latency is the hub's: from the request to the answer's last byte.",
        "range_hour": "Last hour",
        "range_day": "Last day",
        "range_week": "Last week",
        "chart_requests": "Requests per minute",
        "chart_latency": "Latency (ms)",
        "chart_errors": "Error rate (%)",
        "quantile": "Latency shown",
        "series_all": "all versions",
        "series_4xx": "refused (4xx), all",
        "metrics_summary": "{requests} requests, {errors} failed (5xx), {client_errors} refused "
        "(4xx) in this range.",
        "metrics_none": "No requests in this range.",
        "charts_missing": "The chart library (uPlot) is not installed with this hub: reinstall it "
        "with make install (npm copies it).",
        "request_log": "Request log",
        "request_log_help": "The last {n} requests (newest first): who called, what, and how long "
        "it took.",
        "request_log_empty": "No requests yet.",
        "m_time": "Time (UTC)",
        "m_command": "Command",
        "m_latency": "Latency",
        "m_model": "Model",
        "m_caller": "Caller",
        "m_input": "Input",
        "m_output": "Output",
        "m_truncated": "(cut at {n} bytes of {total})",
        "export_jsonl": "Export as JSON lines",
        "record_bodies": "Keep each request's input and output",
        "record_limit": "At most (bytes each)",
        "record_help": "Off by default: inputs and outputs may hold your callers' data. They are "
        "kept with the request log, each cut at this size.",
        "record_on": "Inputs and outputs are kept (at most {n} bytes each).",
        "record_off": "Inputs and outputs are not kept.",
        "record_save": "Save",
        "record_limit_bad": "The size is a whole number of bytes from 1 to {most}.",
    }
)
MESSAGES["zh_CN"].update(
    {
        "hint_between": "{lo} 至 {hi}",
        "hint_at_least": "至少 {n}",
        "hint_at_most": "至多 {n}",
        "hint_step": "步长 {step}",
        "hint_characters": "{span} 个字符",
        "hint_channels_1": "灰度",
        "hint_channels_3": "RGB",
        "hint_channels_4": "RGBA",
        "hint_pixels": "{width}×{height} 像素",
        "hint_width": "宽 {span} 像素",
        "hint_height": "高 {span} 像素",
        "hint_extensions": "{names} 文件",
        "hint_archive": "文件夹的 .zip 或 .tar.gz 压缩包",
        "hint_vector": "{n} 个数字（JSON）",
        "hint_list": "{item} 值的 JSON 列表",
        "hint_point": "[x, y]，取值 0 至 1（JSON）",
        "hint_box": "[xmin, ymin, xmax, ymax]，取值 0 至 1（JSON）",
        "hint_landmarks": "{n} 个点 [x, y]，取值 0 至 1（JSON）",
        "hint_any": "任意 JSON 值",
        "hint_default": "默认值：{value}",
        "try_examples": "示例：",
        "try_example_n": "示例 {number}",
        "try_share": "保留结果并生成分享链接",
        "try_share_help": "hub 将保留本次运行的输入和输出 {days} 天；任何拿到链接的人都能查看。",
        "try_share_link": "分享链接：",
        "try_share_not_kept": "结果过大，无法通过链接保留。",
        "try_share_delete": "删除链接",
        "try_share_deleted": "链接已删除：结果不再保留。",
        "try_copy": "复制",
        "try_copied": "已复制",
        "try_download": "下载",
        "try_bytes": "{size} 字节",
        "result_title": "{service} 的运行结果",
        "result_lead": "{service} 的命令 {command}（版本 {version}），运行于 {made}；保留至 {expires}。",
        "result_inputs": "输入",
        "result_outputs": "输出",
        "result_open_service": "打开该服务，亲自试用",
        "scope_metrics": "GET /metrics 与图表（Prometheus）",
        "metrics": "请求",
        "metrics_help": "经 /serve 的每次调用，按版本区分；每个版本的曲线从其上线时开始。延迟由 hub "
        "测量：从收到请求到应答的最后一个字节。",
        "range_hour": "最近一小时",
        "range_day": "最近一天",
        "range_week": "最近一周",
        "chart_requests": "每分钟请求数",
        "chart_latency": "延迟（毫秒）",
        "chart_errors": "错误率（%）",
        "quantile": "显示的延迟",
        "series_all": "全部版本",
        "series_4xx": "被拒绝（4xx），全部",
        "metrics_summary": "此时间范围内共 {requests} 次请求，{errors} 次失败（5xx），"
        "{client_errors} 次被拒绝（4xx）。",
        "metrics_none": "此时间范围内没有请求。",
        "charts_missing": "本 hub 未安装图表库（uPlot）：请用 make install 重新安装（由 npm 复制）。",
        "request_log": "请求日志",
        "request_log_help": "最近的 {n} 次请求（最新的在前）：谁调用、调用了什么、用时多久。",
        "request_log_empty": "还没有请求。",
        "m_time": "时间（UTC）",
        "m_command": "命令",
        "m_latency": "延迟",
        "m_model": "模型",
        "m_caller": "调用者",
        "m_input": "输入",
        "m_output": "输出",
        "m_truncated": "（共 {total} 字节，截取前 {n} 字节）",
        "export_jsonl": "导出为 JSON Lines",
        "record_bodies": "保存每次请求的输入与输出",
        "record_limit": "上限（每项字节数）",
        "record_help": "默认关闭：输入与输出可能含有调用者的数据。开启后随请求日志保存，每项截取至此大小。",
        "record_on": "正在保存输入与输出（每项至多 {n} 字节）。",
        "record_off": "不保存输入与输出。",
        "record_save": "保存",
        "record_limit_bad": "大小须为 1 到 {most} 之间的整数字节数。",
    }
)
