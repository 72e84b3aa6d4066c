// Loaded before a client library (node --import ./loopback_only.mjs): a
// connection to, or a name lookup of, anything but loopback fails at once
// and says so on stderr ("loopback_only: refused ..."), so a test can
// never reach beyond this machine, and can tell when a library tried.
import dns from "node:dns";
import net from "node:net";

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost)$/;

function refuse(what) {
  const e = new Error(`loopback_only: refused ${what}`);
  process.stderr.write(e.message + "\n");
  return e;
}

// net.Socket#connect(options | [options, cb] (normalized) | port, host).
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  let opts = args[0];
  if (Array.isArray(opts)) opts = opts[0];
  let host = null;
  if (opts && typeof opts === "object") {
    if (!opts.path) host = opts.host || "localhost";
  } else if (typeof args[1] === "string") {
    host = args[1];
  } else {
    host = "localhost";
  }
  if (host !== null && !LOOPBACK.test(host)) throw refuse(`a connection to ${host}`);
  return connect.apply(this, args);
};

const lookup = dns.lookup;
dns.lookup = function (hostname, ...rest) {
  if (!LOOPBACK.test(hostname)) {
    const cb = rest[rest.length - 1];
    const e = refuse(`a lookup of ${hostname}`);
    if (typeof cb === "function") return process.nextTick(cb, Object.assign(e, { code: "ENOTFOUND" }));
    throw e;
  }
  return lookup.call(this, hostname, ...rest);
};
