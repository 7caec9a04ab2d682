// AlgoLink hub pages: checks as you type, and the service page's live status and log.
"use strict";
(function () {
  var RULES = {
    name: { re: /^[A-Za-z0-9_-]{1,64}$/, msg: "nameBad" },
    version: { re: /^[A-Za-z0-9.+-]{1,64}$/, msg: "versionBad" },
    port: { test: function (v) { return /^[0-9]+$/.test(v) && +v >= 1024 && +v <= 65535; },
            msg: "portBad" },
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

  document.querySelectorAll("form.try-form").forEach(function (form) {
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var out = form.querySelector(".try-result");
      out.textContent = "…";
      var data = new FormData(form);
      form.querySelectorAll("input[type=checkbox]").forEach(function (c) {
        data.set(c.name, c.checked ? "true" : "false");
      });
      fetch(form.dataset.action, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-XSRFToken": form.dataset.xsrf },
      }).then(function (r) { return r.json(); }).then(function (answer) {
        out.textContent = "";
        Object.keys(answer).forEach(function (key) {
          var row = document.createElement("div");
          row.className = "try-output" + (key === "error" ? " error" : "");
          var label = document.createElement("strong");
          label.textContent = key + ": ";
          row.appendChild(label);
          var value = answer[key];
          if (typeof value === "string" && value.indexOf("data:image/") === 0) {
            var img = document.createElement("img");
            img.src = value;
            row.appendChild(img);
          } else {
            var span = document.createElement("span");
            span.className = "value";
            span.textContent = typeof value === "string" ? value : JSON.stringify(value);
            row.appendChild(span);
          }
          out.appendChild(row);
        });
      }).catch(function (err) { out.textContent = String(err); });
    });
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
  var labels = JSON.parse(box.dataset.labels || "{}");
  var status = document.getElementById("status");
  var publish = document.getElementById("publish");
  var log = document.getElementById("log");
  var settled = ["registered", "online", "failed", "offline", "development"];
  function show(s) {
    status.className = "status status-" + s;
    status.textContent = labels[s] || s;
    if (publish) publish.classList.toggle("online", s === "online");
  }
  function showVersions(svc) {
    (svc.versions || []).forEach(function (v) {
      var el = document.querySelector('#versions [data-version="' + v.number + '"]');
      if (!el) return;
      el.className = "status status-" + v.status;
      el.textContent = labels[v.status] || v.status;
    });
  }
  function activeLog(svc) {
    var active = (svc.versions || []).filter(function (v) {
      return v.status === "building" || v.status === "starting";
    });
    return active.length ? active[active.length - 1].logs : svc.urls && svc.urls.logs;
  }
  function busy(svc) {
    return settled.indexOf(svc.status) < 0 || (svc.versions || []).some(function (v) {
      return v.status === "building" || v.status === "starting";
    });
  }
  // The build and run log, live: ?follow=1 streams it as it is written; lines are appended.
  var streaming = null;
  function append(text) {
    if (!text) return;
    var atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(document.createTextNode(text));
    if (atEnd) log.scrollTop = log.scrollHeight;
  }
  function stream(url) {
    if (!url || !log) return;
    streaming = url;
    var live = window.ReadableStream && window.TextDecoder;
    var sep = url.indexOf("?") < 0 ? "?" : "&";
    fetch(live ? url + sep + "follow=1" : url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { streaming = null; return; }
      log.textContent = "";
      log.dataset.streaming = live ? "1" : "0";
      if (!live || !r.body) {
        return r.text().then(function (text) { append(text); streaming = null; });
      }
      var reader = r.body.getReader();
      var decoder = new TextDecoder();
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) {
            append(decoder.decode());
            if (streaming === url) streaming = null;
            log.dataset.streaming = "0";
            return;
          }
          append(decoder.decode(chunk.value, { stream: true }));
          return pump();
        });
      }
      return pump();
    }).catch(function () { if (streaming === url) streaming = null; });
  }
  function poll() {
    fetch(box.dataset.api, { credentials: "same-origin" }).then(function (r) {
      return r.json();
    }).then(function (svc) {
      show(svc.status);
      showVersions(svc);
      var url = activeLog(svc);
      if (url && (url !== box.dataset.log || (!streaming && busy(svc)))) {
        box.dataset.log = url;
        stream(url);
      }
      if (busy(svc)) setTimeout(poll, 1000);
    }).catch(function () { setTimeout(poll, 3000); });
  }
  stream(box.dataset.log);
  var initial = status.className.replace("status status-", "");
  if (settled.indexOf(initial) < 0 ||
      document.querySelector("#versions .status-building, #versions .status-starting")) poll();
  var forms = document.querySelectorAll("#service form");
  forms.forEach(function (f) {
    f.addEventListener("submit", function () { setTimeout(poll, 500); });
  });
})();
