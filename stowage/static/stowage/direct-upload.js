/* stowage direct uploads: send a file input's file straight to the storage.
 *
 * Each <div data-stowage-upload> holds a file input and a hidden input. When a
 * file is chosen the script asks the server (data-endpoint) to authorise it,
 * sends it (S3: presigned multipart parts in parallel; otherwise tus 1.0
 * chunks), puts the signed reference in the hidden input and takes the file
 * input out of the form, so only the reference is submitted. An upload is
 * remembered in localStorage and resumes after a reload or a cut connection.
 * Events: "stowage:progress" {loaded, total}, "stowage:done", "stowage:error",
 * "stowage:retry" {attempt, delay, part or offset}.
 * No build step, no dependencies.
 */
(function () {
  "use strict";
  var PARALLEL = 4;

  function csrfToken(box) {
    var form = box.closest("form");
    var field = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    if (field) return field.value;
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function formatBytes(n) {
    if (n < 1024) return n + " B";
    var units = ["KiB", "MiB", "GiB", "TiB"], i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
    return n.toFixed(1) + " " + units[i];
  }

  function Upload(box, input) {
    this.box = box;
    this.input = input;
    this.endpoint = box.dataset.endpoint;
    this.hidden = box.querySelector("input[type=hidden][name='" + input.name + "-staged']");
    this.requests = [];
    this.cancelled = false;
    this.buildBar();
  }

  Upload.prototype.buildBar = function () {
    var bar = document.createElement("div");
    bar.className = "stowage-upload-bar";
    bar.hidden = true;
    bar.innerHTML = '<progress max="100" value="0"></progress>' +
      '<span class="stowage-upload-status" role="status"></span>' +
      '<button type="button" class="stowage-upload-cancel">Cancel</button>';
    this.box.appendChild(bar);
    this.bar = bar;
    this.progress = bar.querySelector("progress");
    this.status = bar.querySelector(".stowage-upload-status");
    this.cancelButton = bar.querySelector("button");
    var self = this;
    this.cancelButton.addEventListener("click", function () { self.cancel(); });
  };

  Upload.prototype.say = function (text, isError) {
    this.bar.hidden = false;
    this.status.textContent = text;
    this.status.classList.toggle("stowage-error", !!isError);
  };

  Upload.prototype.emit = function (name, detail) {
    this.box.dispatchEvent(new CustomEvent("stowage:" + name, { detail: detail, bubbles: true }));
  };

  Upload.prototype.show = function (loaded) {
    var total = this.file.size, percent = total ? Math.floor(loaded * 100 / total) : 100;
    this.progress.value = percent;
    this.say(formatBytes(loaded) + " of " + formatBytes(total) + " (" + percent + "%)");
    this.emit("progress", { loaded: loaded, total: total });
  };

  Upload.prototype.call = function (path, body) {
    var self = this;
    return fetch(this.endpoint + path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(this.box) },
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var error = new Error(data.error || ("HTTP " + response.status));
          error.status = response.status;
          throw error;
        }
        if (self.cancelled) throw new Error("Cancelled.");
        return data;
      });
    });
  };

  Upload.prototype.memoryKey = function () {
    var f = this.file;
    return "stowage-upload:" + location.pathname + ":" + this.input.name + ":" + f.name + ":" +
      f.size + ":" + f.lastModified;
  };

  Upload.prototype.send = function (method, url, body, headers, onProgress) {
    var self = this;
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      Object.keys(headers || {}).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      xhr.upload.onprogress = function (event) { onProgress(event.loaded); };
      xhr.onload = function () {
        remove();
        if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr);
        var error = new Error("The storage answered HTTP " + xhr.status + ".");
        error.status = xhr.status;
        reject(error);
      };
      xhr.onerror = function () { remove(); reject(new Error("The connection failed.")); };
      xhr.onabort = function () { remove(); reject(new Error("Cancelled.")); };
      function remove() { self.requests = self.requests.filter(function (r) { return r !== xhr; }); }
      self.requests.push(xhr);
      xhr.send(body);
    });
  };

  Upload.prototype.start = function (file) {
    var self = this;
    this.file = file;
    this.cancelled = false;
    this.cancelButton.hidden = false;
    this.hidden.value = "";
    this.show(0);
    var saved = localStorage.getItem(this.memoryKey());
    var begin = saved
      ? this.call("status/", { token: saved }).then(function (plan) {
          plan.token = saved;
          return plan;
        }, function () { return null; })
      : Promise.resolve(null);
    return begin.then(function (plan) {
      if (plan) return plan;
      return self.call("", {
        policy: self.box.dataset.policy, name: file.name, size: file.size, type: file.type
      }).then(function (created) {
        localStorage.setItem(self.memoryKey(), created.token);
        return created;
      });
    }).then(function (plan) {
      self.token = plan.token;
      return plan.kind === "s3" ? self.sendParts(plan) : self.sendChunks(plan);
    }).then(function () {
      return self.call("complete/", { token: self.token });
    }).then(function (done) {
      localStorage.removeItem(self.memoryKey());
      self.hidden.value = done.value;
      self.input.dataset.name = self.input.name;
      self.input.removeAttribute("name");
      self.input.required = false;
      self.cancelButton.hidden = true;
      self.progress.value = 100;
      self.say("Uploaded " + done.name + " (" + formatBytes(done.size) + ").");
      self.emit("done", done);
    }).catch(function (error) {
      if (self.cancelled) return;
      if (error.status === 404 || error.status === 403) localStorage.removeItem(self.memoryKey());
      self.say(error.message, true);
      self.emit("error", { message: error.message });
    });
  };

  Upload.prototype.sendParts = function (plan) {
    var self = this, size = this.file.size, partSize = plan.part_size;
    var stored = {}, loaded = {}, urls = {};
    (plan.stored || []).forEach(function (part) {
      stored[part.number] = true;
      loaded[part.number] = part.size;
    });
    var count = Math.max(1, Math.ceil(size / partSize)), queue = [];
    for (var n = 1; n <= count; n++) if (!stored[n]) queue.push(n);
    function total() {
      return Object.keys(loaded).reduce(function (sum, k) { return sum + loaded[k]; }, 0);
    }
    self.show(total());
    function urlFor(number) {
      if (urls[number]) return Promise.resolve(urls[number]);
      var batch = queue.slice(0, PARALLEL * 2).concat([number]);
      return self.call("sign/", { token: self.token, parts: batch }).then(function (signed) {
        Object.keys(signed.urls).forEach(function (k) { urls[k] = signed.urls[k]; });
        return urls[number];
      });
    }
    function worker() {
      if (self.cancelled) return Promise.reject(new Error("Cancelled."));
      var number = queue.shift();
      if (number === undefined) return Promise.resolve();
      var blob = self.file.slice((number - 1) * partSize, Math.min(number * partSize, size));
      return urlFor(number).then(function (url) {
        delete urls[number];
        return self.retrying({ part: number }, function () {
          return self.send("PUT", url, blob, {}, function (bytes) {
            loaded[number] = bytes;
            self.show(total());
          });
        });
      }).then(function () {
        loaded[number] = blob.size;
        self.show(total());
        self.emit("part", { number: number });
        return worker();
      });
    }
    var workers = [];
    for (var i = 0; i < Math.min(PARALLEL, queue.length); i++) workers.push(worker());
    return Promise.all(workers);
  };

  Upload.prototype.sendChunks = function (plan) {
    var self = this, size = this.file.size, chunk = plan.chunk_size;
    var location = plan.location || (this.endpoint + "tus/" + encodeURIComponent(this.token));
    var headers = { "Tus-Resumable": "1.0.0", "X-CSRFToken": csrfToken(this.box) };
    function reached(xhr) { return parseInt(xhr.getResponseHeader("Upload-Offset"), 10); }
    function patch(offset) {
      var blob = self.file.slice(offset, Math.min(offset + chunk, size));
      var patchHeaders = Object.assign({
        "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream"
      }, headers);
      return self.send("PATCH", location, blob, patchHeaders, function (bytes) {
        self.show(offset + bytes);
      }).then(reached);
    }
    function step(offset) {
      self.show(offset);
      if (offset >= size) return Promise.resolve();
      if (self.cancelled) return Promise.reject(new Error("Cancelled."));
      return self.retrying({ offset: offset }, function (attempt) {
        if (!attempt) return patch(offset);
        // After a failure, ask how much arrived and send only the rest.
        return self.send("HEAD", location, null, headers, function () {}).then(reached).then(patch);
      }).then(step);
    }
    return step(plan.offset || 0);
  };

  // -- Retries ------------------------------------------------------------------------
  // A part or chunk whose connection failed, or that the storage answered with a
  // 5xx or a 409, is sent again after each of these pauses (milliseconds); then
  // the upload stops with an error, and choosing the file again (after a reload
  // too) resumes it from what the storage holds.
  var RETRY_DELAYS = [500, 1000, 2000, 4000];

  function retryable(error) {
    return !error.status || error.status === 409 || error.status >= 500;
  }

  // Run attempt(0), attempt(1)… until one succeeds, a failure is not retryable,
  // the delays run out or the upload is cancelled; "detail" goes in the events.
  Upload.prototype.retrying = function (detail, attempt) {
    var self = this;
    function run(n) {
      return attempt(n).catch(function (error) {
        if (self.cancelled || n >= RETRY_DELAYS.length || !retryable(error)) throw error;
        self.say(error.message + " Trying again…", true);
        self.emit("retry", Object.assign({ attempt: n + 1, delay: RETRY_DELAYS[n] }, detail));
        return new Promise(function (resolve) { setTimeout(resolve, RETRY_DELAYS[n]); })
          .then(function () {
            if (self.cancelled) throw new Error("Cancelled.");
            return run(n + 1);
          });
      });
    }
    return run(0);
  };

  Upload.prototype.cancel = function () {
    this.cancelled = true;
    this.requests.slice().forEach(function (xhr) { xhr.abort(); });
    var token = this.token;
    if (this.file) localStorage.removeItem(this.memoryKey());
    this.token = null;
    this.input.value = "";
    this.hidden.value = "";
    this.cancelButton.hidden = true;
    this.progress.value = 0;
    this.say("Upload cancelled.");
    this.emit("cancelled", {});
    if (token) {
      this.cancelled = false;
      this.call("abort/", { token: token }).catch(function () {});
      this.cancelled = true;
    }
  };

  function attach(box) {
    var input = box.querySelector("input[type=file]");
    if (!input || box.stowageUpload) return;
    var upload = new Upload(box, input);
    box.stowageUpload = upload;
    if (upload.hidden.value) {
      // The form came back (another field's error): the finished upload is kept.
      input.dataset.name = input.name;
      input.removeAttribute("name");
      input.required = false;
      upload.cancelButton.hidden = true;
      upload.say("The uploaded file is kept; choose another to replace it.");
    }
    input.addEventListener("change", function () {
      if (input.dataset.name) { input.name = input.dataset.name; delete input.dataset.name; }
      if (input.files && input.files[0]) upload.start(input.files[0]);
    });
    var form = box.closest("form");
    if (form) {
      form.addEventListener("submit", function (event) {
        if (upload.file && !upload.hidden.value && !upload.cancelled && upload.token) {
          event.preventDefault();
          upload.say("Wait for the upload to finish.", true);
        }
      });
    }
  }

  function attachAll() {
    document.querySelectorAll("[data-stowage-upload]").forEach(attach);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", attachAll);
  else attachAll();
})();
