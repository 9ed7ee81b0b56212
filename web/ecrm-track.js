/*
 * eCRM first-party tracking snippet (Segment HTTP tracking spec).
 *
 *   <script>window.ecrmConfig = {endpoint: "https://api.example.com/prod", writeKey: "wk_..."};</script>
 *   <script src="/ecrm-track.js" async></script>
 *   ecrm.productViewed({product_id: "sku-100", name: "Trail running shoes", price: 129});
 *
 * Sends page views automatically, and product views, add-to-cart, checkout and sign-in when the
 * page calls them. Messages are batched (POST /v1/batch, HTTP Basic auth with the write key) and
 * flushed every 2 s, at 20 messages, and when the page is hidden (fetch keepalive), so nothing is
 * lost when the visitor leaves. The anonymous id lives in localStorage; identify() adds the user id.
 * The write key is public: pass identify() the userHash your backend computed (hex HMAC-SHA256 of
 * the user id with the source's identity secret), or the sign-in is kept only as a claim (ADR 9).
 * Any analytics.js-compatible library works too: point its apiHost at the platform's /v1.
 */
(function (window, document) {
  "use strict";
  var config = window.ecrmConfig || {};
  var storage = window.localStorage;
  var queue = [];
  var timer = null;

  function uuid() {
    return window.crypto && window.crypto.randomUUID ? window.crypto.randomUUID()
      : "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
          var r = (Math.random() * 16) | 0; return (c === "x" ? r : (r & 0x3) | 0x8).toString(16);
        });
  }
  function anonymousId() {
    var id = storage.getItem("ecrm_anonymous_id");
    if (!id) { id = uuid(); storage.setItem("ecrm_anonymous_id", id); }
    return id;
  }
  function context() {
    return {
      library: {name: "ecrm-track.js", version: "1.0.0"},
      page: {url: window.location.href, path: window.location.pathname, title: document.title,
             referrer: document.referrer},
      userAgent: window.navigator.userAgent,
      locale: window.navigator.language
    };
  }
  function enqueue(message, userHash) {
    message.messageId = uuid();
    message.anonymousId = anonymousId();
    var userId = storage.getItem("ecrm_user_id");
    if (userId && !message.userId) { message.userId = userId; }
    message.timestamp = new Date().toISOString();
    message.context = context();
    if (userHash) { message.context.userHash = userHash; }
    queue.push(message);
    if (queue.length >= 20) { flush(false); } else if (!timer) { timer = setTimeout(function () { flush(false); }, 2000); }
  }
  function flush(leaving) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!queue.length || !config.endpoint || !config.writeKey) { return; }
    var batch = queue.splice(0, queue.length);
    var body = JSON.stringify({batch: batch, sentAt: new Date().toISOString()});
    window.fetch(config.endpoint.replace(/\/$/, "") + "/v1/batch", {
      method: "POST", keepalive: leaving, body: body,
      headers: {"Content-Type": "application/json", "Authorization": "Basic " + window.btoa(config.writeKey + ":")}
    }).catch(function () { queue = batch.concat(queue); });  // retried with the next flush
  }

  var ecrm = {
    page: function (name, properties) { enqueue({type: "page", name: name || document.title, properties: properties || {}}); },
    track: function (event, properties) { enqueue({type: "track", event: event, properties: properties || {}}); },
    identify: function (userId, traits, userHash) {
      storage.setItem("ecrm_user_id", userId);
      enqueue({type: "identify", userId: userId, traits: traits || {}}, userHash);
    },
    productViewed: function (product) { ecrm.track("Product Viewed", product); },
    addToCart: function (product) { ecrm.track("Product Added", product); },
    checkoutStarted: function (cart) { ecrm.track("Checkout Started", cart); },
    flush: function () { flush(false); }
  };
  window.ecrm = ecrm;
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") { flush(true); } });
  ecrm.page();
})(window, document);
