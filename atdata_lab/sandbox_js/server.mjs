// The atdata-lab sandbox: the reference PDS (@atproto/pds) and an in-memory PLC directory
// (@did-plc/server) in one Node process, both listening on 127.0.0.1 only.
//
// Started by atdata_lab/sandbox (Python). The configuration, secrets included, arrives as one
// JSON object on stdin, so that no secret appears in argv, the environment or a file we did not
// mean to write. Fields:
//   host, pdsPort, plcPort          where to listen (host must be a loopback address)
//   publicUrl                       the PDS URL written into DID documents
//   dataDirectory, blobstoreDir     PDS storage (created here if missing)
//   plcOpsFile                      optional: JSON lines of PLC operations, replayed at start and
//                                   appended to on every accepted operation (persistence)
//   jwtSecret, adminPassword, plcRotationKeyHex, blobUploadLimit
//   parentPid                       optional: shut down when this process is gone
//   pdsEnv                          optional: extra PDS settings as PDS_* variables (e.g.
//                                   PDS_RATE_LIMITS_ENABLED), parsed by the PDS's readEnv()
// Logs (pino JSON) go to stdout/stderr, which the Python side sends to a log file.

import fs from 'node:fs'
import net from 'node:net'

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1'])

function say(event, fields = {}) {
  process.stdout.write(`ATDATA_SANDBOX ${JSON.stringify({ event, ...fields })}\n`)
}

function fail(message, err) {
  say('error', { message, detail: err ? String(err.stack || err) : undefined })
  process.exit(1)
}

async function readStdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}

// Both servers call `app.listen(port)` with no host, which listens on every interface.
// Force a host onto every TCP listen in this process; refuse anything that is not loopback.
function forceListenHost(host) {
  const original = net.Server.prototype.listen
  net.Server.prototype.listen = function (...args) {
    if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
      const port = Number(args[0])
      const rest = args.slice(1)
      if (typeof rest[0] === 'string' && !LOOPBACK.has(rest[0])) {
        throw new Error(`sandbox refuses to listen on ${rest[0]}: loopback only`)
      }
      if (typeof rest[0] === 'string') rest.shift()
      return original.call(this, port, host, ...rest)
    }
    if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined) {
      if (args[0].host && !LOOPBACK.has(args[0].host)) {
        throw new Error(`sandbox refuses to listen on ${args[0].host}: loopback only`)
      }
      return original.call(this, { ...args[0], host }, ...args.slice(1))
    }
    return original.apply(this, args)
  }
}

function checkBound(server, host, name) {
  const addr = server.address()
  if (!addr || typeof addr === 'string' || addr.address !== host) {
    throw new Error(`${name} is listening on ${JSON.stringify(addr)}, not on ${host}`)
  }
  return addr
}

async function startPlc(cfg) {
  const plcMod = await import('@did-plc/server')
  const { PlcServer, Database } = plcMod.default ?? plcMod
  const db = Database.mock()
  let replayed = 0
  if (cfg.plcOpsFile) {
    if (fs.existsSync(cfg.plcOpsFile)) {
      const lines = fs.readFileSync(cfg.plcOpsFile, 'utf8').split('\n').filter((l) => l.trim())
      for (const line of lines) {
        const { did, op } = JSON.parse(line)
        await db.validateAndAddOp(did, op)
        replayed += 1
      }
    }
    const add = db.validateAndAddOp.bind(db)
    db.validateAndAddOp = async (did, op) => {
      await add(did, op)
      fs.appendFileSync(cfg.plcOpsFile, JSON.stringify({ did, op }) + '\n', { mode: 0o600 })
    }
  }
  const plc = PlcServer.create({ db, port: cfg.plcPort })
  const server = await plc.start()
  const addr = checkBound(server, cfg.host, 'PLC directory')
  return { plc, addr, replayed }
}

// The PDS settings that `vars` (PDS_* names) change, parsed by the PDS's own readEnv().
function pdsEnvOverrides(readEnv, vars) {
  const names = Object.keys(vars || {})
  if (!names.length) return {}
  const before = readEnv()
  const saved = Object.fromEntries(names.map((k) => [k, process.env[k]]))
  let after
  try {
    for (const k of names) process.env[k] = String(vars[k])
    after = readEnv()
  } finally {
    for (const k of names) {
      if (saved[k] === undefined) delete process.env[k]
      else process.env[k] = saved[k]
    }
  }
  const out = {}
  for (const [k, v] of Object.entries(after)) {
    if (JSON.stringify(v) !== JSON.stringify(before[k])) out[k] = v
  }
  say('pds-env', { applied: Object.keys(out), given: names })
  return out
}

async function startPds(cfg) {
  const { PDS, envToCfg, envToSecrets, readEnv } = await import('@atproto/pds')
  fs.mkdirSync(cfg.dataDirectory, { recursive: true, mode: 0o700 })
  fs.mkdirSync(cfg.blobstoreDir, { recursive: true, mode: 0o700 })
  const env = {
    port: cfg.pdsPort,
    hostname: 'localhost',
    devMode: true,
    inviteRequired: false,
    dataDirectory: cfg.dataDirectory,
    blobstoreDiskLocation: cfg.blobstoreDir,
    didPlcUrl: `http://localhost:${cfg.plcPort}`,
    jwtSecret: cfg.jwtSecret,
    adminPassword: cfg.adminPassword,
    plcRotationKeyK256PrivateKeyHex: cfg.plcRotationKeyHex,
    blobUploadLimit: cfg.blobUploadLimit,
    crawlers: [],
    version: '0.5-atdata-lab-sandbox',
    ...pdsEnvOverrides(readEnv, cfg.pdsEnv),
  }
  const pdsCfg = envToCfg(env)
  if (cfg.publicUrl) pdsCfg.service.publicUrl = cfg.publicUrl
  const pds = await PDS.create(pdsCfg, envToSecrets(env))
  const server = await pds.start()
  const addr = checkBound(server, cfg.host, 'PDS')
  return { pds, addr }
}

async function main() {
  const cfg = await readStdin()
  if (!LOOPBACK.has(cfg.host)) fail(`host must be a loopback address, not ${cfg.host}`)
  forceListenHost(cfg.host)

  let plc, pds
  let stopping = false
  const stop = async (why) => {
    if (stopping) return
    stopping = true
    say('stopping', { why })
    const force = setTimeout(() => process.exit(0), 5000)
    force.unref()
    try {
      if (pds) await pds.destroy()
    } catch (err) {
      say('warning', { message: 'PDS shutdown failed', detail: String(err) })
    }
    try {
      if (plc) await plc.destroy()
    } catch (err) {
      say('warning', { message: 'PLC shutdown failed', detail: String(err) })
    }
    say('stopped')
    process.exit(0)
  }
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => stop(sig))

  try {
    const p = await startPlc(cfg)
    plc = p.plc
    say('plc-listening', { address: p.addr.address, port: p.addr.port, replayed: p.replayed })
    const d = await startPds(cfg)
    pds = d.pds
    say('ready', {
      pds: { address: d.addr.address, port: d.addr.port },
      plc: { address: p.addr.address, port: p.addr.port },
      pid: process.pid,
      node: process.version,
    })
  } catch (err) {
    fail(err && err.code === 'EADDRINUSE' ? 'port in use' : 'startup failed', err)
  }

  if (cfg.parentPid) {
    const timer = setInterval(() => {
      try {
        process.kill(cfg.parentPid, 0)
      } catch {
        clearInterval(timer)
        stop('parent process is gone')
      }
    }, 1000)
  }
}

main().catch((err) => fail('startup failed', err))
