// Sign (and optionally send) an lms_bridge webhook with Node.js (18 or later: crypto and fetch built in).
//   LMS_BRIDGE_SCHEME=standard-webhooks LMS_BRIDGE_SECRET=whsec_... BODY='{"email": ...}' node sign.js
// Without URL it prints the headers; WEBHOOK_ID and WEBHOOK_TIMESTAMP fix them (test vectors).
const crypto = require("node:crypto");

function sign(scheme, secret, body, id, timestamp, header = "X-Hub-Signature-256", prefix = "sha256=") {
  const hmac = (key) => crypto.createHmac("sha256", key);
  if (scheme === "standard-webhooks") {
    const key = Buffer.from(secret.replace(/^whsec_/, ""), "base64");
    const signature = hmac(key).update(`${id}.${timestamp}.`).update(body).digest("base64");
    return { "webhook-id": id, "webhook-timestamp": String(timestamp), "webhook-signature": `v1,${signature}` };
  }
  if (scheme === "hmac-sha256") return { [header]: prefix + hmac(secret).update(body).digest("hex") };
  if (scheme === "lernito") return { "X-Lernito-Signature": hmac(secret).update(body).digest("hex") }; // raw body
  throw new Error(`unknown scheme ${scheme}`);
}

async function main() {
  const env = process.env;
  const body = Buffer.from(env.BODY, "utf8"); // sign exactly the bytes you send
  const headers = sign(env.LMS_BRIDGE_SCHEME, env.LMS_BRIDGE_SECRET, body,
    env.WEBHOOK_ID || `msg_${crypto.randomBytes(12).toString("hex")}`,
    Number(env.WEBHOOK_TIMESTAMP || Math.floor(Date.now() / 1000)),
    env.HMAC_HEADER || "X-Hub-Signature-256", env.HMAC_PREFIX ?? "sha256=");
  if (!env.URL) {
    for (const [name, value] of Object.entries(headers)) console.log(`${name}: ${value}`);
    return;
  }
  const response = await fetch(env.URL, { method: "POST", body, headers: { "Content-Type": "application/json", ...headers } });
  console.log(response.status, await response.text());
  if (!response.ok) process.exitCode = 1; // retry only 429 and 5xx
}

main();
