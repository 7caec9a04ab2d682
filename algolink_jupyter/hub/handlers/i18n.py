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
        "port": "Port",
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
        "port_help": "Optional: left empty, the hub assigns a free port.",
        "port_bad": "A port is a whole number between 1024 and 65535.",
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
        "port": "端口",
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
        "port_help": "可选：留空时系统会自动分配闲置端口。",
        "port_bad": "端口必须是 1024 到 65535 之间的整数。",
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
