/* stowage direct uploads: send a file input's file straight to the storage.
 *
 * Each <div data-stowage-upload> holds a file input and a hidden input. When a
 * file is chosen the script asks the server (data-endpoint) to authorise it,
 * sends it with the sender the server names (S3: presigned multipart parts in
 * parallel, each with its CRC32 where the server asks for one; Azure: blocks in
 * parallel under a SAS; GCS: chunks in order to a resumable session; otherwise
 * tus 1.0 chunks to Django), puts the signed
 * reference in the hidden input and takes the file input out of the form, so
 * only the reference is submitted. A part or chunk cut off is sent again after
 * growing pauses; an upload is remembered in localStorage and resumes after a
 * reload or a cut connection.
 * Events: "stowage:progress" {loaded, total}, "stowage:part" {number},
 * "stowage:retry" {attempt, delay, part or offset}, "stowage:done",
 * "stowage:error", "stowage:cancelled".
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

  // CRC32 (reflected polynomial 0xEDB88320), eight bytes a step: eight tables of 256.
  var crcTables = null;
  function crcTable() {
    if (crcTables) return crcTables;
    var t = new Int32Array(8 * 256), n, k, c;
    for (n = 0; n < 256; n++) {
      c = n;
      for (k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xEDB88320 : c >>> 1;
      t[n] = c;
    }
    for (n = 0; n < 256; n++) {
      c = t[n];
      for (k = 1; k < 8; k++) { c = t[c & 0xff] ^ (c >>> 8); t[k * 256 + n] = c; }
    }
    return (crcTables = t);
  }

  // The CRC32 of `bytes` (a Uint8Array) as S3 takes it: base64 of its four bytes, big-endian.
  function crc32(bytes) {
    var t = crcTable(), crc = -1, i = 0, n = bytes.length, end = n - (n % 8), a;
    for (; i < end; i += 8) {
      a = (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) ^ crc;
      crc = t[1792 + (a & 0xff)] ^ t[1536 + ((a >>> 8) & 0xff)] ^
        t[1280 + ((a >>> 16) & 0xff)] ^ t[1024 + (a >>> 24)] ^
        t[768 + bytes[i + 4]] ^ t[512 + bytes[i + 5]] ^ t[256 + bytes[i + 6]] ^ t[bytes[i + 7]];
    }
    for (; i < n; i++) crc = t[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
    crc = ~crc;
    return btoa(String.fromCharCode(
      (crc >>> 24) & 0xff, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff));
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
    // Parts still in flight when another failed must not hide the error.
    if (this.failed) return;
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

  // What is remembered of an upload: {token}, and for GCS its plan and the offset
  // the session last confirmed, so a resumed upload goes on from there.
  Upload.prototype.recall = function () {
    var saved = localStorage.getItem(this.memoryKey());
    if (!saved) return null;
    try { return JSON.parse(saved); } catch (e) { return { token: saved }; }
  };

  Upload.prototype.remember = function (record) {
    localStorage.setItem(this.memoryKey(), JSON.stringify(record));
  };

  // Send one request to the storage; 2xx and the statuses in `accept` resolve.
  Upload.prototype.send = function (method, url, body, headers, onProgress, accept) {
    var self = this;
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      Object.keys(headers || {}).forEach(function (k) { xhr.setRequestHeader(k, headers[k]); });
      xhr.upload.onprogress = function (event) { onProgress(event.loaded); };
      xhr.onload = function () {
        remove();
        if ((xhr.status >= 200 && xhr.status < 300) || (accept || []).indexOf(xhr.status) >= 0) {
          resolve(xhr);
          return;
        }
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
    this.failed = false;
    this.cancelButton.hidden = false;
    this.hidden.value = "";
    this.show(0);
    var saved = this.recall(), begin = Promise.resolve(null);
    if (saved && saved.plan) {
      begin = Promise.resolve(Object.assign({}, saved.plan, { token: saved.token }));
    } else if (saved) {
      begin = this.askStatus(saved.token).catch(function () { return null; });
    }
    return begin.then(function (plan) {
      if (plan) return plan;
      return self.call("", {
        policy: self.box.dataset.policy, name: file.name, size: file.size, type: file.type
      }).then(function (created) {
        self.remember({ token: created.token });
        return created;
      });
    }).then(function (plan) {
      self.token = plan.token;
      return SENDERS[plan.kind].call(self, plan);
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
      var gone = error.status === 404 || error.status === 403;
      if (gone) localStorage.removeItem(self.memoryKey());
      // Stop the other parts: none starts or retries after the error is shown, so
      // what is stored is what the next attempt resumes from.
      self.failed = true;
      self.requests.slice().forEach(function (xhr) { xhr.abort(); });
      self.say(error.message, true);
      self.emit("error", { message: error.message });
    });
  };

  // Ask the server what the upload stored; the answer is a plan, as at the start.
  Upload.prototype.askStatus = function (token) {
    return this.call("status/", { token: token }).then(function (plan) {
      plan.token = token;
      return plan;
    });
  };

  // Send numbered parts, PARALLEL at a time, skipping those stored; urlFor(n, queue,
  // blob) gives a promise of the URL to PUT part n to, or of {url, body, headers}.
  Upload.prototype.sendParts = function (plan, urlFor) {
    var self = this, size = this.file.size, partSize = plan.part_size;
    var stored = {}, loaded = {}, queue = [];
    (plan.stored || []).forEach(function (part) {
      stored[part.number] = true;
      loaded[part.number] = part.size;
    });
    for (var n = 1; n <= plan.part_count; n++) if (!stored[n]) queue.push(n);
    function total() {
      return Object.keys(loaded).reduce(function (sum, k) { return sum + loaded[k]; }, 0);
    }
    self.show(total());
    function worker() {
      if (self.cancelled || self.failed) return Promise.reject(new Error("Cancelled."));
      var number = queue.shift();
      if (number === undefined) return Promise.resolve();
      var blob = self.file.slice((number - 1) * partSize, Math.min(number * partSize, size));
      return urlFor(number, queue, blob).then(function (target) {
        var request = typeof target === "string" ? { url: target, body: blob } : target;
        return self.retrying({ part: number }, function () {
          return self.send("PUT", request.url, request.body, request.headers, function (bytes) {
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

  // S3: part URLs presigned by the server, in batches ahead of the workers; where the
  // parts carry their CRC32, one by one, each signing the CRC32 of the part read.
  function sendToS3(plan) {
    var self = this, urls = {};
    if (plan.checksum === "crc32") {
      return this.sendParts(plan, function (number, queue, blob) {
        return blob.arrayBuffer().then(function (buffer) {
          var sum = crc32(new Uint8Array(buffer)), checksums = {};
          checksums[number] = sum;
          return self.call("sign/", { token: self.token, parts: [number], checksums: checksums })
            .then(function (signed) {
              // The file's own slice goes, not the bytes read: the browser streams it.
              return {
                url: signed.urls[number],
                body: blob,
                headers: { "x-amz-checksum-crc32": sum },
              };
            });
        });
      });
    }
    function take(number) {
      var url = urls[number];
      delete urls[number];
      return url;
    }
    return this.sendParts(plan, function (number, queue) {
      if (urls[number]) return Promise.resolve(take(number));
      var batch = queue.slice(0, PARALLEL * 2).concat([number]);
      return self.call("sign/", { token: self.token, parts: batch }).then(function (signed) {
        Object.keys(signed.urls).forEach(function (k) { urls[k] = signed.urls[k]; });
        return take(number);
      });
    });
  }

  // Azure: Put Block under the blob's SAS URL, renewed (status/) before it expires.
  function sendToAzure(plan) {
    var self = this, current = plan, renewAt = Date.now() + (plan.expires_in - 60) * 1000;
    function sasUrl() {
      if (Date.now() < renewAt) return Promise.resolve(current.url);
      return self.askStatus(self.token).then(function (fresh) {
        current = fresh;
        renewAt = Date.now() + (fresh.expires_in - 60) * 1000;
        return fresh.url;
      });
    }
    return this.sendParts(plan, function (number) {
      // Block ids: base64 of the part number's six digits, as the server expects.
      var id = btoa(String(number).padStart(6, "0"));
      return sasUrl().then(function (url) {
        return url + "&comp=block&blockid=" + encodeURIComponent(id);
      });
    });
  }

  // GCS: chunks PUT in order to the resumable session. A 308 answer says what the
  // session stored (its Range header, where the CORS rules expose it; else the
  // whole chunk); that offset is remembered, so a resumed upload starts there.
  // A chunk the session refuses makes the server ask the session, once.
  function sendToGCS(plan) {
    var self = this, size = this.file.size, chunk = plan.chunk_size, resynced = -1;
    var session = { kind: plan.kind, url: plan.url, chunk_size: chunk };
    function step(offset) {
      self.show(offset);
      if (self.cancelled) return Promise.reject(new Error("Cancelled."));
      self.remember({ token: self.token, plan: Object.assign({ offset: offset }, session) });
      var end = Math.min(offset + chunk, size);
      // An empty file, or every byte stored: an empty PUT naming the size finishes it.
      var range = end > offset ? "bytes " + offset + "-" + (end - 1) + "/" + size : "bytes */" + size;
      return self.retrying({ offset: offset }, function () {
        return self.send("PUT", plan.url, self.file.slice(offset, end), { "Content-Range": range },
          function (bytes) { self.show(offset + bytes); }, [308]);
      }).then(function (xhr) {
        if (xhr.status !== 308) return undefined;
        var stored = /^bytes=0-(\d+)$/.exec(xhr.getResponseHeader("Range") || "");
        return step(stored ? parseInt(stored[1], 10) + 1 : end);
      }, function (error) {
        var refused = error.status >= 400 && error.status < 500;
        if (!refused || error.status === 404 || resynced === offset) throw error;
        resynced = offset;
        return self.askStatus(self.token).then(function (answer) {
          return answer.complete ? undefined : step(answer.offset);
        });
      });
    }
    return step(plan.offset || 0);
  }

  // Any other storage: tus 1.0 PATCH requests to Django.
  function sendToTus(plan) {
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
  }

  // The sender of each kind of upload session the server names.
  var SENDERS = { s3: sendToS3, azure: sendToAzure, gcs: sendToGCS, tus: sendToTus };

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
        var over = self.cancelled || self.failed || n >= RETRY_DELAYS.length;
        if (over || !retryable(error)) throw error;
        self.say(error.message + " Trying again…", true);
        self.emit("retry", Object.assign({ attempt: n + 1, delay: RETRY_DELAYS[n] }, detail));
        return new Promise(function (resolve) { setTimeout(resolve, RETRY_DELAYS[n]); })
          .then(function () {
            if (self.cancelled || self.failed) throw new Error("Cancelled.");
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
