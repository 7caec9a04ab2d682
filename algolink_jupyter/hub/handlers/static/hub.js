// AlgoLink hub pages: checks as you type, and the service page's live status and log.
"use strict";
(function () {
  var RULES = {
    name: { re: /^[A-Za-z0-9_-]{1,64}$/, msg: "nameBad" },
    // a group (分组) name: letters of any language, digits, _ and - (the hub checks it again)
    group: { re: /^[\p{L}\p{M}\p{N}_-]{1,64}$/u, msg: "nameBad" },
    version: { re: /^[A-Za-z0-9.+-]{1,64}$/, msg: "versionBad" },
  };
  function check(input) {
    var rule = RULES[input.dataset.rule];
    var form = input.form;
    if (!rule || !form) return true;
    var ok = input.value === "" ? !input.required
      : rule.re ? rule.re.test(input.value) : rule.test(input.value);
    input.setCustomValidity(ok ? "" : form.dataset[rule.msg] || "invalid");
    input.classList.toggle("invalid", !ok);
    return ok;
  }
  document.addEventListener("input", function (e) {
    if (e.target.dataset && e.target.dataset.rule) check(e.target);
  });

  // Forms that delete ask first: a yes (data-confirm), or the name typed again (data-confirm-name).
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.dataset || !form.dataset.confirm) return;
    var field = form.querySelector("input[name=confirm]");
    if (form.dataset.confirmName) {
      var typed = window.prompt(form.dataset.confirm, "");
      if (typed === null || typed.trim() !== form.dataset.confirmName) { e.preventDefault(); return; }
      if (field) field.value = typed.trim();
    } else {
      if (!window.confirm(form.dataset.confirm)) { e.preventDefault(); return; }
      if (field) field.value = "1";
    }
  }, true);

  // "Try it": previews of chosen files, recorded examples one click away, the command's answer shown
  // by its declared types under its form, and a shareable link when asked (public services).
  function tryLabels() {
    var box = document.getElementById("try");
    try { return JSON.parse((box && box.dataset.labels) || "{}"); } catch (err) { return {}; }
  }
  function fmt(text, values) {
    return String(text || "").replace(/\{(\w+)\}/g, function (m, k) { return k in values ? values[k] : m; });
  }
  function decodeFile(value, name) {
    // A wire value (a data URI, or {"filename", "data"}) as a File for an <input type=file>.
    var uri = typeof value === "string" ? value : "data:application/octet-stream;base64," + (value.data || "");
    var filename = (value && value.filename) || name;
    var m = /^data:([^;,]*)(?:;[^,]*)?,(.*)$/.exec(uri);
    if (!m) return null;
    var bin = atob(m[2]);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var type = m[1] || "application/octet-stream";
    if (typeof value === "string" && type.indexOf("image/") === 0) filename += "." + type.slice(6).replace("jpeg", "jpg");
    return new File([bytes], filename, { type: type });
  }
  function preview(input) {
    var box = input.parentNode.querySelector(".try-preview");
    if (!box) return;
    box.textContent = "";
    var file = input.files && input.files[0];
    box.hidden = !file;
    if (!file) return;
    if (file.type.indexOf("image/") === 0) {
      // A data URL: the page's Content-Security-Policy lets images come from data:, not blob:.
      var img = document.createElement("img");
      img.alt = file.name;
      var reader = new FileReader();
      reader.onload = function () { img.src = reader.result; };
      reader.readAsDataURL(file);
      box.appendChild(img);
    }
    var note = document.createElement("span");
    note.className = "muted";
    note.textContent = file.name + " · " + fmt(tryLabels().bytes, { size: file.size.toLocaleString() });
    box.appendChild(note);
  }
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (input.type === "file" && input.closest && input.closest(".try-form")) preview(input);
  });
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest(".try-example");
    if (!button) return;
    var form = button.form;
    var example = JSON.parse(form.dataset.examples || "[]")[Number(button.dataset.example)] || {};
    Object.keys(example).forEach(function (name) {
      var input = form.querySelector('[name="' + CSS.escape(name) + '"]');
      var value = example[name];
      if (!input || value === null || value === undefined) return;
      if (input.type === "file") {
        var file = decodeFile(value, name);
        if (!file) return;
        var dt = new DataTransfer();
        dt.items.add(file);
        input.files = dt.files;
        preview(input);
      } else if (input.type === "checkbox") {
        input.checked = value === true || value === "true";
      } else if (input.tagName === "TEXTAREA" || (typeof value !== "string" && input.type !== "number")) {
        input.value = typeof value === "string" && input.dataset.type !== "any" && input.tagName !== "TEXTAREA"
          ? value : JSON.stringify(value);
      } else {
        input.value = String(value);
      }
    });
    form.querySelectorAll(".try-example").forEach(function (b) { b.classList.toggle("chosen", b === button); });
  });
  function shown(kind, value, labels) {
    if (typeof value === "string" && /^data:image\/(png|jpeg|gif|webp|bmp);base64,/i.test(value)) {
      var img = document.createElement("img");
      img.src = value;
      return img;
    }
    if (typeof value === "string" && /^data:[^,]*;base64,/.test(value) && kind !== "text") {
      var a = document.createElement("a");
      a.href = "data:application/octet-stream;base64," + value.slice(value.indexOf(",") + 1);
      a.download = kind || "output";
      var size = Math.floor((value.length - value.indexOf(",") - 1) * 3 / 4);
      a.textContent = labels.download + " (" + fmt(labels.bytes, { size: size.toLocaleString() }) + ")";
      return a;
    }
    var el = document.createElement(typeof value === "string" ? "span" : "pre");
    el.className = "value";
    el.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2);
    return el;
  }
  function shareLink(out, path, key, form, labels) {
    var row = document.createElement("div");
    row.className = "try-share-link";
    var label = document.createElement("strong");
    label.textContent = labels.share_link + " ";
    var link = document.createElement("a");
    link.href = path;
    link.textContent = new URL(path, window.location.href).href;
    var copy = document.createElement("button");
    copy.type = "button";
    copy.className = "small";
    copy.textContent = labels.copy;
    copy.addEventListener("click", function () {
      if (navigator.clipboard) navigator.clipboard.writeText(link.href).then(function () { copy.textContent = labels.copied; });
    });
    // Only this page holds the delete key: the one who made the link can take it back.
    var remove = document.createElement("button");
    remove.type = "button";
    remove.className = "small danger try-share-delete";
    remove.textContent = labels.share_delete;
    remove.addEventListener("click", function () {
      var body = new URLSearchParams();
      body.set("key", key || "");
      fetch(path + "/delete", {
        method: "POST", body: body, credentials: "same-origin",
        headers: { "X-XSRFToken": form.dataset.xsrf },
      }).then(function (r) {
        if (r.ok) row.textContent = labels.share_deleted;
      });
    });
    row.appendChild(label);
    row.appendChild(link);
    row.appendChild(document.createTextNode(" "));
    row.appendChild(copy);
    row.appendChild(document.createTextNode(" "));
    row.appendChild(remove);
    out.appendChild(row);
  }
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.classList || !form.classList.contains("try-form")) return;
    e.preventDefault();
    var labels = tryLabels();
    var out = form.querySelector(".try-result");
    out.textContent = "…";
    var data = new FormData();
    form.querySelectorAll("[name]").forEach(function (input) {
      if (input.type === "checkbox") { data.set(input.name, input.checked ? "true" : "false"); return; }
      if (input.type === "file") { if (input.files.length) data.set(input.name, input.files[0]); return; }
      // An empty box is not sent: the command's default applies, or the service names what is missing.
      if (input.value === "" && input.dataset.type !== "text") return;
      data.set(input.name, input.value);
    });
    var share = form.querySelector(".try-share-box");
    var url = form.dataset.action + (share && share.checked ? "?share=1" : "");
    var kinds = JSON.parse(form.dataset.outputs || "{}");
    fetch(url, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-XSRFToken": form.dataset.xsrf },
    }).then(function (r) {
      return r.json().then(function (answer) { return { r: r, answer: answer }; });
    }).then(function (got) {
      var answer = got.answer;
      out.textContent = "";
      Object.keys(answer).forEach(function (key) {
        var row = document.createElement("div");
        row.className = "try-output" + (key === "error" ? " error" : "");
        row.dataset.output = key;
        var label = document.createElement("strong");
        label.textContent = key + ": ";
        row.appendChild(label);
        row.appendChild(shown(key === "error" ? "text" : kinds[key], answer[key], labels));
        out.appendChild(row);
      });
      var link = got.r.headers.get("X-AlgoLink-Result");
      if (link) shareLink(out, link, got.r.headers.get("X-AlgoLink-Result-Delete-Key"), form, labels);
      else if (got.r.ok && got.r.headers.get("X-AlgoLink-Result-Kept") === "no") {
        var note = document.createElement("p");
        note.className = "hint";
        note.textContent = labels.share_not_kept;
        out.appendChild(note);
      }
    }).catch(function (err) { out.textContent = String(err); });
  });

  // The model card editor: the description's preview, sanitised by the hub as the page is.
  document.querySelectorAll("textarea[data-preview]").forEach(function (area) {
    var out = document.getElementById(area.dataset.preview);
    var timer = null;
    function render() {
      var body = new URLSearchParams();
      body.set("text", area.value);
      body.set("_xsrf", area.form.querySelector("input[name=_xsrf]").value);
      fetch("/preview", { method: "POST", body: body, credentials: "same-origin" }).then(function (r) {
        return r.ok ? r.text() : "";
      }).then(function (html) { out.innerHTML = html; }).catch(function () {});
    }
    area.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(render, 250); });
    render();
  });

  var box = document.getElementById("service");
  if (!box) return;
  // The service page shows one state: the hub's. The API's "state" digest changes with anything
  // the page shows; then the page is fetched again and every part of it replaced at once (the log
  // keeps streaming, a form being filled in is left alone).
  var settled = ["registered", "online", "failed", "offline", "development"];
  var PARTS = ["head", "metadata", "api-panel", "try", "options", "versions", "delete-service"];
  var log = document.getElementById("log");
  var streaming = null;

  function busy(svc) {
    return settled.indexOf(svc.status) < 0 || (svc.versions || []).some(function (v) {
      return v.status === "building" || v.status === "starting" ||
        v.process === "starting" || v.process === "restarting";
    });
  }
  function editing(part) {
    var active = document.activeElement;
    if (part.id === "options") {
      var save = document.getElementById("options-save");
      if (save && save.disabled) return true; // an upload is running
    }
    if (!active || !part.contains(active)) return false;
    return active.tagName === "INPUT" || active.tagName === "SELECT" || active.tagName === "TEXTAREA";
  }
  function replaceParts(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var next = fresh.getElementById("service");
    if (!next) return;
    PARTS.forEach(function (id) {
      var old = document.getElementById(id);
      var neu = fresh.getElementById(id);
      if (old && neu) {
        if (id === "try" && old.dataset.commands === neu.dataset.commands) return;
        if (editing(old)) return;
        old.replaceWith(document.importNode(neu, true));
      } else if (old && !neu) {
        old.remove();
      }
    });
    var select = document.getElementById("log-version");
    var freshSelect = fresh.getElementById("log-version");
    var switchTo = next.dataset.logNumber !== box.dataset.logNumber ? next.dataset.logNumber : null;
    if (select && freshSelect) {
      var chosen = switchTo || select.value;
      select.innerHTML = freshSelect.innerHTML;
      select.value = chosen;
    } else if (!select && freshSelect) {
      var panel = document.getElementById("log-panel");
      if (panel) panel.insertBefore(document.importNode(freshSelect.parentNode, true), log);
    }
    box.dataset.state = next.dataset.state;
    box.dataset.logNumber = next.dataset.logNumber;
    document.dispatchEvent(new Event("algolink:replaced"));
    if (switchTo) streamSelected();
  }

  // The build and run log of the version chosen, live: ?follow=1 streams it as it is written.
  function append(text) {
    if (!text) return;
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(document.createTextNode(text));
    if (atEnd) log.scrollTop = log.scrollHeight;
  }
  function selectedLog() {
    var select = document.getElementById("log-version");
    if (!select || !select.selectedOptions.length) return null;
    return select.selectedOptions[0].dataset.url;
  }
  function stream(url) {
    if (!url || !log) return;
    var mine = {};
    streaming = mine;
    var live = window.ReadableStream && window.TextDecoder;
    var sep = url.indexOf("?") < 0 ? "?" : "&";
    log.textContent = "";
    log.dataset.url = url;
    fetch(live ? url + sep + "follow=1" : url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok || streaming !== mine) return;
      log.dataset.streaming = live ? "1" : "0";
      if (!live || !r.body) {
        return r.text().then(function (text) { if (streaming === mine) append(text); });
      }
      var reader = r.body.getReader();
      var decoder = new TextDecoder();
      function pump() {
        return reader.read().then(function (chunk) {
          if (streaming !== mine) { reader.cancel(); return; }
          if (chunk.done) {
            append(decoder.decode());
            log.dataset.streaming = "0";
            streaming = null;
            return;
          }
          append(decoder.decode(chunk.value, { stream: true }));
          return pump();
        });
      }
      return pump();
    }).catch(function () { if (streaming === mine) streaming = null; });
  }
  function streamSelected() { stream(selectedLog()); }
  document.addEventListener("change", function (e) {
    if (e.target && e.target.id === "log-version") streamSelected();
  });

  var timer = null;
  function poll(soon) {
    clearTimeout(timer);
    timer = setTimeout(refresh, soon || 0);
  }
  function refresh() {
    if (document.hidden) { poll(4000); return; }
    fetch(box.dataset.api, { credentials: "same-origin" }).then(function (r) {
      return r.json();
    }).then(function (svc) {
      var again = busy(svc) ? 1000 : 4000;
      if (svc.state && svc.state !== box.dataset.state) {
        return fetch(window.location.pathname, { credentials: "same-origin" }).then(function (r) {
          return r.ok ? r.text() : "";
        }).then(function (html) {
          if (html) replaceParts(html);
          if (!streaming && busy(svc)) streamSelected();
          poll(again);
        });
      }
      if (!streaming && busy(svc)) streamSelected();
      poll(again);
    }).catch(function () { poll(5000); });
  }
  streamSelected();
  poll(500);
})();
