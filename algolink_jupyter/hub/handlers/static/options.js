/* The service page's setup options: values, and files streamed to the hub's upload route (resumed
   where they stopped when the connection breaks), then a new version with those values. */
(function () {
  "use strict";
  // Bound at load, and again when the live refresh puts a new options card on the page.
  function init() {
  var box = document.getElementById("options");
  var form = document.getElementById("options-form");
  if (!box || !form || box.dataset.bound) return;
  box.dataset.bound = "1";
  var api = box.dataset.api, xsrf = box.dataset.xsrf;
  var out = document.getElementById("options-result");

  function say(text, bad) {
    out.textContent = text;
    out.className = "options-result" + (bad ? " error" : "");
  }

  function answer(r) {
    return r.text().then(function (text) {
      var body = {};
      try { body = JSON.parse(text || "{}"); } catch (e) { body = { error: text }; }
      if (!r.ok) throw new Error(body.error || r.statusText);
      return body;
    });
  }

  function send(url, body) {
    return fetch(url, {
      method: body.method || "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-XSRFToken": xsrf },
      body: JSON.stringify(body.json),
    }).then(answer);
  }

  function put(url, blob, offset, total, bar) {
    return new Promise(function (resolve, reject) {
      var x = new XMLHttpRequest();
      x.open("PUT", url + "?offset=" + offset);
      x.setRequestHeader("X-XSRFToken", xsrf);
      x.setRequestHeader("Content-Type", "application/octet-stream");
      x.upload.onprogress = function (e) {
        bar.value = total ? (100 * (offset + e.loaded)) / total : 100;
      };
      x.onload = function () {
        var body = {};
        try { body = JSON.parse(x.responseText || "{}"); } catch (e) { body = {}; }
        if (x.status === 200) resolve(body);
        else { var err = new Error(body.error || x.statusText); err.final = true; reject(err); }
      };
      x.onerror = function () { reject(new Error(box.dataset.msgResuming)); };
      x.send(blob);
    });
  }

  function upload(name, file, bar) {
    bar.hidden = false;
    bar.value = 0;
    return send(api + "/uploads", {
      json: { option: name, filename: file.name, size: file.size, version: +box.dataset.base },
    }).then(function (started) {
      var url = "/api/v1/uploads/" + started.id;
      var tries = 0;
      function from(offset) {
        return put(url, file.slice(offset), offset, file.size, bar).then(function (a) {
          if (a.complete) { bar.value = 100; return a.value; }
          return from(a.offset);
        }, function (err) {
          if (err.final || ++tries > 3) throw err;
          say(err.message);
          return fetch(url, { credentials: "same-origin" }).then(answer).then(function (s) {
            return from(s.offset);
          });
        });
      }
      return from(0);
    }).catch(function (err) {
      bar.hidden = true;
      throw err;
    });
  }

  function value(row) {
    var input = row.querySelector("input, select");
    var type = row.dataset.type;
    if (type === "boolean") return input.checked;
    var raw = input.value;
    if (raw === "") return undefined;
    if (type === "number") return Number(raw);
    if (type === "text" || type === "category") return raw;
    try { return JSON.parse(raw); } catch (e) { return raw; }
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var values = {};
    var uploads = [];
    form.querySelectorAll("tr.option").forEach(function (row) {
      var name = row.dataset.name;
      var input = row.querySelector("input[type=file]");
      if (input) {
        if (input.files.length) uploads.push([name, input.files[0], row.querySelector("progress")]);
        return;
      }
      var v = value(row);
      if (v !== undefined) values[name] = v;
    });
    if (!uploads.length && !Object.keys(values).length) { say(box.dataset.msgNothing, true); return; }
    var button = document.getElementById("options-save");
    button.disabled = true;
    say(uploads.length ? box.dataset.msgUploading : "");
    var chain = Promise.resolve();
    uploads.forEach(function (u) {
      chain = chain.then(function () {
        return upload(u[0], u[1], u[2]).then(function (v) { values[u[0]] = v; });
      });
    });
    chain.then(function () {
      return send(api + "/options", {
        method: "PUT",
        json: {
          values: values,
          version: +box.dataset.base,
          publish: document.getElementById("options-publish").checked,
        },
      });
    }).then(function (v) {
      say(box.dataset.msgSaved.replace("{version}", v.version));
      setTimeout(function () { window.location.reload(); }, 1200);
    }).catch(function (err) {
      say(box.dataset.msgRefused.replace("{message}", err.message), true);
      button.disabled = false;
    });
  });
  }
  init();
  document.addEventListener("algolink:replaced", init);
})();
