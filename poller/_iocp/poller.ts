/**
 * Readiness polling for Windows sockets over an I/O completion port, through the AFD poll
 * mechanism used by wepoll and mio.
 *
 * How it works: every registered socket has one `IOCTL_AFD_POLL` request outstanding on an AFD
 * helper handle (`\Device\Afd\eventloop`, one per {@linkcode GROUP_SIZE} sockets) that is
 * associated with one completion port. A request completes once any polled condition holds; the
 * wait reports it and queues the socket for re-arming, and the next wait re-submits the request
 * before blocking. A socket that is still ready completes again at once, which makes the backend
 * level-triggered; re-arming lazily (not straight after the report) lets the caller drain the
 * socket first, so the next report reflects the state after the callback ran.
 *
 * Every request's `IO_STATUS_BLOCK` and `AFD_POLL_INFO` live in a slot of a fixed arena
 * (`ArrayBuffer`s that are never moved or released before the poller closes) because the kernel
 * writes them asynchronously. The ApcContext of a request, which the completion entry returns as
 * `lpOverlapped`, is the slot number plus one; the slot table records which registration (and
 * which generation of it) owns the request, so a completion that arrives after `modify` or
 * `unregister` is recognised as stale and dropped.
 *
 * @module
 */

import { PollerError, PollerUnavailableError } from "../errors.ts";
import { ERROR, type EventBatch, HANGUP, type Poller, type PollerBackend } from "../types.ts";
import {
  AFD_DEVICE_NAME,
  AFD_POLL_INFO,
  AFD_POLL_LOCAL_CLOSE,
  afdEventsFor,
  FILE_OPEN,
  FILE_SHARE_READ_WRITE,
  FILE_SKIP_SET_EVENT_ON_HANDLE,
  INFINITE,
  IO_STATUS_BLOCK,
  IOCTL_AFD_POLL,
  KEY_AFD,
  KEY_WAKE,
  ntError,
  OBJECT_ATTRIBUTES,
  OVERLAPPED_ENTRY,
  readinessFromAfd,
  SIO_BASE_HANDLE,
  SIO_BSP_HANDLE,
  SIO_BSP_HANDLE_POLL,
  SLOT,
  SO_TYPE,
  SOL_SOCKET,
  STATUS_CANCELLED,
  STATUS_INVALID_HANDLE,
  STATUS_PENDING,
  STATUS_SUCCESS,
  SYNCHRONIZE,
  timeoutToDword,
  UNICODE_STRING,
  utf16le,
  WAIT_TIMEOUT,
} from "./_layout.ts";
import { crtError, ntStatusText, winError } from "./_errors.ts";
import { openWindowsLibraries, type WindowsLibraries } from "./_ffi.ts";
import { checkBatch, checkFd, checkInterest, checkToken, normaliseTimeout } from "../_validate.ts";

/** Sockets per AFD helper handle, as in wepoll and mio (many polls on one handle get slow). */
const GROUP_SIZE = 32;
/** Slots per arena chunk. */
const CHUNK_SLOTS = 64;
/** 32-bit words per slot. */
const SLOT_WORDS = SLOT.size / 4;
/** Word offsets inside a slot. */
const W_IOSB_STATUS = SLOT.iosb / 4;
const W_INFO = SLOT.info / 4;
const W_TIMEOUT_LO = W_INFO + AFD_POLL_INFO.timeout / 4;
const W_COUNT = W_INFO + AFD_POLL_INFO.numberOfHandles / 4;
const W_EXCLUSIVE = W_INFO + AFD_POLL_INFO.exclusive / 4;
const W_HANDLE_LO = W_INFO + AFD_POLL_INFO.handle / 4;
const W_EVENTS = W_INFO + AFD_POLL_INFO.events / 4;
const W_STATUS = W_INFO + AFD_POLL_INFO.status / 4;
/** Completion entries one wait dequeues at most. */
const MAX_ENTRIES = 1024;
/** Words per OVERLAPPED_ENTRY. */
const ENTRY_WORDS = OVERLAPPED_ENTRY.size / 4;
const W_ENTRY_KEY = OVERLAPPED_ENTRY.completionKey / 4;
const W_ENTRY_OVERLAPPED = OVERLAPPED_ENTRY.overlapped / 4;
const KEY_WAKE_BIG = BigInt(KEY_WAKE);
const WSAENOTSOCK = 10038;
/** `ulNumEntriesRemoved` before a parked call writes it: tells whether that call has returned. */
const REMOVED_SENTINEL = 0xffffffff;
/** ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER, ERROR_ABANDONED_WAIT_0: the port is unusable. */
const FATAL_WAIT_ERRORS: readonly number[] = [6, 87, 735];
/** How long a sync wait waits for a parked waitAsync it woke to hand over its entries. */
const TAKE_PARKED_MS = 250;

/** One AFD helper handle and how many registrations use it. */
interface Group {
  readonly handle: Deno.PointerObject;
  members: number;
}

/** The state of one registered socket. */
class Registration {
  fd: number;
  token: number;
  interest: number;
  /** Poller-wide unique number, recorded by each slot it submits on. */
  readonly gen: number;
  readonly group: Group;
  /** The base socket handle, as two 32-bit halves for the AFD_POLL_INFO. */
  readonly baseLo: number;
  readonly baseHi: number;
  /** The slot this registration submits on. */
  slot: number;
  /** The AFD event mask of the request outstanding on `slot`, 0 when none is. */
  pendingMask = 0;
  /** In the re-arm queue. */
  queued = false;
  /** A re-arm failed: reported once as ERROR, then idle until modify(). */
  stalled = false;
  /** The socket was closed without unregistering (AFD_POLL_LOCAL_CLOSE): no longer polled. */
  dead = false;
  /** Still in the registry. */
  registered = true;

  constructor(
    fd: number,
    token: number,
    interest: number,
    gen: number,
    group: Group,
    base: bigint,
    slot: number,
  ) {
    this.fd = fd;
    this.token = token;
    this.interest = interest;
    this.gen = gen;
    this.group = group;
    this.baseLo = Number(base & 0xffffffffn);
    this.baseHi = Number(base >> 32n);
    this.slot = slot;
  }
}

/** The IOCP/AFD poller. Made by `createIocpPoller`. */
export class IocpPoller implements Poller {
  readonly backend: PollerBackend = "iocp";
  #lib: WindowsLibraries;
  #port: Deno.PointerObject;
  #closed = false;
  #closing: Promise<void> | null = null;
  #parked: Promise<number> | null = null;
  /** A sync wait decoded the parked call's entries (its promise must report nothing). */
  #asyncTaken = false;
  #spin = new Int32Array(new SharedArrayBuffer(4));
  #wakePosted = false;
  #nextGen = 1;

  #registry = new Map<number, Registration>();
  #groups: Group[] = [];

  // The slot arena. Chunks are never released before close: the kernel writes into them.
  #chunks: ArrayBuffer[] = [];
  #chunkWords: Uint32Array[] = [];
  #slotIosb: Deno.PointerObject[] = [];
  #slotInfo: Deno.PointerObject[] = [];
  #slotApc: Deno.PointerObject[] = [];
  #slotOwner: (Registration | null)[] = [];
  #slotGen: number[] = [];
  #slotHandle: (Deno.PointerObject | null)[] = [];
  #slotPending: number[] = [];
  #pendingCount = 0;
  #freeSlots: number[] = [];

  // Re-arm queue (reused array, explicit length: no allocation per event).
  #rearm: (Registration | undefined)[] = [];
  #rearmLength = 0;
  #stalled: Registration[] = [];

  // Completion entries: one buffer for sync waits, one for the parked async wait.
  #syncEntries = new Uint8Array(new ArrayBuffer(MAX_ENTRIES * OVERLAPPED_ENTRY.size));
  #syncWords = new Uint32Array(this.#syncEntries.buffer);
  #syncRemoved = new Uint32Array(1);
  #syncRemovedBytes = new Uint8Array(this.#syncRemoved.buffer);
  #asyncEntries = new Uint8Array(new ArrayBuffer(MAX_ENTRIES * OVERLAPPED_ENTRY.size));
  #asyncWords = new Uint32Array(this.#asyncEntries.buffer);
  #asyncRemoved = new Uint32Array(new SharedArrayBuffer(4));
  #asyncRemovedBytes = new Uint8Array(this.#asyncRemoved.buffer);

  // Scratch buffers of control calls.
  #cancelIosb = new Uint8Array(IO_STATUS_BLOCK.size);
  #handleOut = new Uint8Array(8);
  #bytesOut = new Uint8Array(4);
  #intOut = new Int32Array(1);
  #intOutBytes = new Uint8Array(this.#intOut.buffer);

  constructor() {
    let lib: WindowsLibraries;
    try {
      lib = openWindowsLibraries();
    } catch (error) {
      if (
        error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
      ) {
        throw new PollerUnavailableError(
          "permission",
          "Cannot create the IOCP poller as the FFI permission is missing: run with --allow-ffi",
          { cause: error },
        );
      }
      throw error;
    }
    this.#lib = lib;
    const wsaData = new Uint8Array(512); // WSADATA is 408 bytes on x64
    const startup = lib.ws2.WSAStartup(0x0202, wsaData);
    if (startup !== 0) {
      lib.close();
      throw winError("WSAStartup", startup);
    }
    const invalidHandle = Deno.UnsafePointer.create(0xffffffffffffffffn);
    const port = lib.kernel32.CreateIoCompletionPort(invalidHandle, null, 0n, 0);
    if (port === null) {
      const code = lib.kernel32.GetLastError();
      lib.ws2.WSACleanup();
      lib.close();
      throw winError("CreateIoCompletionPort", code);
    }
    this.#port = port;
  }

  get closed(): boolean {
    return this.#closed;
  }

  register(fd: number, token: number, interest: number): void {
    const inRange = checkFd(fd, "register a socket");
    checkToken(token, "register a socket");
    checkInterest(interest, "register a socket");
    this.#checkOpen("register");
    if (!inRange) throw crtError("register", "EBADF", `${fd} is not a handle`);
    const existing = this.#registry.get(fd);
    if (existing !== undefined) {
      if (!existing.dead) {
        throw crtError("register", "EEXIST", `socket ${fd} is already registered (use modify)`);
      }
      this.#drop(existing); // closed without unregistering: the handle value was reused
    }
    const base = this.#baseHandle(fd);
    if (base instanceof PollerError) throw base;
    const group = this.#acquireGroup();
    const slot = this.#allocSlot();
    const reg = new Registration(fd, token, interest, this.#nextGen++, group, base, slot);
    const status = this.#submit(reg);
    if (status !== STATUS_SUCCESS && status !== STATUS_PENDING) {
      this.#releaseSlot(slot);
      group.members--;
      throw this.#ntFailure("NtDeviceIoControlFile", status);
    }
    this.#registry.set(fd, reg);
  }

  modify(fd: number, token: number, interest: number): void {
    const inRange = checkFd(fd, "modify a socket");
    checkToken(token, "modify a socket");
    checkInterest(interest, "modify a socket");
    this.#checkOpen("modify");
    if (!inRange) throw crtError("modify", "EBADF", `${fd} is not a handle`);
    const reg = this.#registry.get(fd);
    if (reg === undefined) throw crtError("modify", "ENOENT", `socket ${fd} is not registered`);
    if (reg.dead) {
      throw crtError("modify", "EBADF", `socket ${fd} was closed while registered`);
    }
    reg.token = token;
    const mask = afdEventsFor(interest);
    reg.interest = interest;
    if (reg.pendingMask === mask) return; // the outstanding request already polls for this
    if (reg.pendingMask !== 0) {
      // The outstanding request polls for other events: cancel it and submit on a fresh slot
      // now, instead of waiting for the cancellation to complete.
      this.#orphan(reg.slot);
      reg.pendingMask = 0;
      reg.slot = this.#allocSlot();
    }
    reg.stalled = false;
    const status = this.#submit(reg);
    if (status !== STATUS_SUCCESS && status !== STATUS_PENDING) {
      if (status === STATUS_INVALID_HANDLE) reg.dead = true;
      throw this.#ntFailure("NtDeviceIoControlFile", status);
    }
  }

  unregister(fd: number): void {
    const inRange = checkFd(fd, "unregister a socket");
    this.#checkOpen("unregister");
    if (!inRange) throw crtError("unregister", "EBADF", `${fd} is not a handle`);
    const reg = this.#registry.get(fd);
    if (reg === undefined) {
      throw crtError("unregister", "ENOENT", `socket ${fd} is not registered`);
    }
    this.#drop(reg);
  }

  supports(fd: number, interest: number): boolean {
    checkInterest(interest, "check support");
    this.#checkOpen("supports");
    if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) return false;
    return typeof this.#baseHandle(fd) === "bigint";
  }

  wait(batch: EventBatch, timeoutMs: number): number {
    checkBatch(batch);
    const ms = normaliseTimeout(timeoutMs);
    this.#checkOpen("GetQueuedCompletionStatusEx");
    this.#flushRearms();
    let out = this.#emitStalled(batch, 0);
    // A completion goes to ONE waiter: take over whatever a parked waitAsync dequeued.
    if (this.#parked !== null && !this.#asyncTaken) out = this.#takeParked(batch, out);
    const count = Math.min(batch.capacity - out, MAX_ENTRIES);
    if (count === 0) {
      batch.length = out;
      return out;
    }
    const kernel32 = this.#lib.kernel32;
    // Windows may end a wait up to a clock tick early: wait again for the rest if it did.
    const deadline = ms > 0 ? performance.now() + ms : 0;
    let dword = out > 0 ? 0 : timeoutToDword(ms);
    for (;;) {
      this.#syncRemoved[0] = 0;
      const ok = kernel32.GetQueuedCompletionStatusEx(
        this.#port,
        this.#syncEntries,
        count,
        this.#syncRemovedBytes,
        dword,
        0,
      );
      if (ok !== 0) {
        out = this.#decode(this.#syncWords, this.#syncRemoved[0], batch, out, true);
        break;
      }
      // GetLastError is read only after a failure. A timeout is no failure for us; only codes
      // that mean the port itself is unusable are thrown (anything else, possibly a stale value
      // under Wine, is treated as a spurious return).
      const code = kernel32.GetLastError();
      if (code !== WAIT_TIMEOUT && FATAL_WAIT_ERRORS.includes(code)) {
        batch.length = out;
        throw winError("GetQueuedCompletionStatusEx", code);
      }
      if (dword === 0 || dword === INFINITE) break;
      const remainingMs = deadline - performance.now();
      if (remainingMs <= 0) break;
      dword = timeoutToDword(remainingMs);
    }
    batch.length = out;
    return out;
  }

  waitAsync(batch: EventBatch, timeoutMs: number): Promise<number> {
    let ms: number;
    try {
      checkBatch(batch);
      ms = normaliseTimeout(timeoutMs);
      this.#checkOpen("GetQueuedCompletionStatusEx");
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#parked !== null) {
      return Promise.reject(
        new Deno.errors.Busy(
          "Cannot wait asynchronously as another waitAsync is still outstanding",
        ),
      );
    }
    this.#flushRearms();
    const start = this.#emitStalled(batch, 0);
    const count = Math.min(batch.capacity - start, MAX_ENTRIES);
    if (start > 0 || count === 0) {
      batch.length = start;
      return Promise.resolve(start);
    }
    const parked = this.#park(batch, count, ms, ms > 0 ? performance.now() + ms : 0);
    this.#parked = parked;
    return parked;
  }

  wake(): void {
    if (this.#closing !== null && this.#parked === null) return;
    this.#postWake();
  }

  close(): Promise<void> {
    if (this.#closing === null) {
      this.#closed = true;
      this.#closing = this.#shutdown();
    }
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const lib = this.#lib;
    if (this.#parked !== null) {
      this.#postWake();
      try {
        await this.#parked;
      } catch {
        // settled is all that matters here
      }
    }
    for (const reg of this.#registry.values()) reg.registered = false;
    this.#registry.clear();
    // Cancel every outstanding request and wait for its completion: until then the kernel may
    // still write into the arena.
    for (let slot = 0; slot < this.#slotPending.length; slot++) {
      if (this.#slotPending[slot]) this.#orphan(slot);
    }
    for (let round = 0; this.#pendingCount > 0 && round < 50; round++) {
      this.#asyncRemoved[0] = 0;
      const ok = await lib.kernel32.GetQueuedCompletionStatusExAsync(
        this.#port,
        this.#asyncEntries,
        MAX_ENTRIES,
        this.#asyncRemovedBytes,
        100,
        0,
      );
      const n = ok !== 0 ? this.#asyncRemoved[0] : 0;
      for (let i = 0; i < n; i++) {
        const e = i * ENTRY_WORDS;
        if (this.#asyncWords[e + W_ENTRY_KEY] !== KEY_AFD) continue;
        const slot = this.#asyncWords[e + W_ENTRY_OVERLAPPED] - 1;
        if (this.#slotPending[slot]) {
          this.#slotPending[slot] = 0;
          this.#pendingCount--;
        }
      }
    }
    // Closing the helper handles cancels anything the drain missed.
    for (const group of this.#groups) lib.kernel32.CloseHandle(group.handle);
    this.#groups.length = 0;
    lib.kernel32.CloseHandle(this.#port);
    lib.ws2.WSACleanup();
    lib.close();
  }

  // --- internals -------------------------------------------------------------------------

  /**
   * Parks one `GetQueuedCompletionStatusEx` on the blocking pool. A timeout that ends before
   * `deadline` (Windows may wake a tick early) parks again for the rest.
   */
  #park(batch: EventBatch, count: number, ms: number, deadline: number): Promise<number> {
    this.#asyncTaken = false;
    this.#asyncRemoved[0] = REMOVED_SENTINEL;
    return this.#lib.kernel32.GetQueuedCompletionStatusExAsync(
      this.#port,
      this.#asyncEntries,
      count,
      this.#asyncRemovedBytes,
      timeoutToDword(ms),
      0,
    ).then((ok) => {
      if (this.#asyncTaken) {
        // A sync wait already decoded this result (see #takeParked): report nothing here.
        this.#asyncTaken = false;
        this.#parked = null;
        batch.length = 0;
        return 0;
      }
      // A failed off-thread wait (its GetLastError is another thread's) counts as a timeout.
      const n = ok !== 0 ? this.#asyncRemoved[0] : 0;
      if (n === 0 && !this.#closed && ms > 0 && ms !== -1) {
        const remainingMs = deadline - performance.now();
        if (remainingMs > 0) return this.#park(batch, count, remainingMs, deadline);
      }
      this.#parked = null;
      // Decode even when closing: it keeps the outstanding-request bookkeeping exact.
      const out = this.#decode(this.#asyncWords, n, batch, 0, false);
      batch.length = this.#closed ? 0 : out;
      return batch.length;
    }, (error) => {
      this.#parked = null;
      throw error;
    });
  }

  /**
   * A sync wait while a waitAsync is parked: wake the parked thread and, once its call has
   * returned (it writes the entry count before returning), decode its entries into `batch`
   * here. Its promise then resolves with 0. Bounded: if the parked call does not return in
   * time, the sync wait goes on without it (both waits then share the port).
   */
  #takeParked(batch: EventBatch, out: number): number {
    const removed = this.#asyncRemoved;
    if (Atomics.load(removed, 0) === REMOVED_SENTINEL) {
      this.#postWake(); // still inside the call: make it return
      const until = performance.now() + TAKE_PARKED_MS;
      while (Atomics.load(removed, 0) === REMOVED_SENTINEL && performance.now() < until) {
        Atomics.wait(this.#spin, 0, 0, 0.05);
      }
    }
    const n = removed[0];
    if (n === REMOVED_SENTINEL) return out;
    this.#asyncTaken = true;
    // Only as many as fit: the rest stay in the entries and are dropped, so re-arm them.
    return this.#decode(this.#asyncWords, n, batch, out, true);
  }

  #checkOpen(syscall: string): void {
    if (this.#closed) throw crtError(syscall, "EBADF", "the poller is closed");
  }

  #postWake(): void {
    if (this.#wakePosted) return; // one wake packet in the port is enough
    const ok = this.#lib.kernel32.PostQueuedCompletionStatus(this.#port, 0, KEY_WAKE_BIG, null);
    if (ok !== 0) this.#wakePosted = true;
  }

  /** The base socket handle behind `fd`, or the error saying why there is none. */
  #baseHandle(fd: number): bigint | PollerError {
    const ws2 = this.#lib.ws2;
    const socket = BigInt(fd);
    // Is it a socket at all? (Wine's SIO_BASE_HANDLE echoes any handle back.)
    this.#intOut[0] = 4;
    if (ws2.getsockopt(socket, SOL_SOCKET, SO_TYPE, this.#handleOut, this.#intOutBytes) !== 0) {
      const code = ws2.WSAGetLastError();
      // Not a socket: say EBADF when it is no open handle at all.
      if (this.#lib.kernel32.GetHandleInformation(socket, this.#bytesOut) === 0) {
        return crtError("getsockopt", "EBADF", `${fd} is not an open handle`);
      }
      return winError("getsockopt", code, `${fd} is not a socket (SO_TYPE)`);
    }
    const out = new BigUint64Array(this.#handleOut.buffer);
    let firstError = 0;
    // Layered providers may hide the base handle from SIO_BASE_HANDLE: try the fallbacks.
    for (const code of [SIO_BASE_HANDLE, SIO_BSP_HANDLE_POLL, SIO_BSP_HANDLE]) {
      out[0] = 0n;
      const result = ws2.WSAIoctl(
        socket,
        code,
        null,
        0,
        this.#handleOut,
        8,
        this.#bytesOut,
        null,
        null,
      );
      if (result === 0 && out[0] !== 0n && out[0] !== 0xffffffffffffffffn) return out[0];
      if (firstError === 0) firstError = result === 0 ? WSAENOTSOCK : ws2.WSAGetLastError();
    }
    return winError("WSAIoctl", firstError, `no base handle for socket ${fd} (SIO_BASE_HANDLE)`);
  }

  #acquireGroup(): Group {
    for (const group of this.#groups) {
      if (group.members < GROUP_SIZE) {
        group.members++;
        return group;
      }
    }
    const group: Group = { handle: this.#openAfd(), members: 1 };
    this.#groups.push(group);
    return group;
  }

  /** Opens an AFD helper handle and associates it with the completion port. */
  #openAfd(): Deno.PointerObject {
    const { kernel32, ntdll } = this.#lib;
    const name = utf16le(AFD_DEVICE_NAME);
    const unicode = new Uint8Array(UNICODE_STRING.size);
    const unicodeView = new DataView(unicode.buffer);
    unicodeView.setUint16(UNICODE_STRING.length, name.byteLength, true);
    unicodeView.setUint16(UNICODE_STRING.maximumLength, name.byteLength, true);
    unicodeView.setBigUint64(
      UNICODE_STRING.buffer,
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(name))),
      true,
    );
    const attributes = new Uint8Array(OBJECT_ATTRIBUTES.size);
    const attributesView = new DataView(attributes.buffer);
    attributesView.setUint32(OBJECT_ATTRIBUTES.length, OBJECT_ATTRIBUTES.size, true);
    attributesView.setBigUint64(
      OBJECT_ATTRIBUTES.objectName,
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(unicode))),
      true,
    );
    const iosb = new Uint8Array(IO_STATUS_BLOCK.size);
    const handleOut = new Uint8Array(8);
    const status = ntdll.NtCreateFile(
      handleOut,
      SYNCHRONIZE,
      attributes,
      iosb,
      null,
      0,
      FILE_SHARE_READ_WRITE,
      FILE_OPEN,
      0,
      null,
      0,
    );
    // Keep the name buffers alive across the call (their addresses are inside `attributes`).
    void name;
    void unicode;
    if (status !== STATUS_SUCCESS) throw this.#ntFailure("NtCreateFile", status);
    const handle = Deno.UnsafePointer.create(new BigUint64Array(handleOut.buffer)[0]);
    if (handle === null) throw this.#ntFailure("NtCreateFile", STATUS_INVALID_HANDLE);
    const associated = kernel32.CreateIoCompletionPort(handle, this.#port, BigInt(KEY_AFD), 0);
    if (associated === null) {
      const code = kernel32.GetLastError();
      kernel32.CloseHandle(handle);
      throw winError("CreateIoCompletionPort", code);
    }
    // Optional: saves the kernel signalling the handle on every completion.
    kernel32.SetFileCompletionNotificationModes(handle, FILE_SKIP_SET_EVENT_ON_HANDLE);
    return handle;
  }

  #allocSlot(): number {
    const free = this.#freeSlots.pop();
    if (free !== undefined) return free;
    const chunk = new ArrayBuffer(CHUNK_SLOTS * SLOT.size);
    const first = this.#slotOwner.length;
    const base = Deno.UnsafePointer.of(chunk);
    this.#chunks.push(chunk);
    this.#chunkWords.push(new Uint32Array(chunk));
    for (let i = 0; i < CHUNK_SLOTS; i++) {
      const slot = first + i;
      this.#slotIosb.push(Deno.UnsafePointer.offset(base!, i * SLOT.size + SLOT.iosb)!);
      this.#slotInfo.push(Deno.UnsafePointer.offset(base!, i * SLOT.size + SLOT.info)!);
      this.#slotApc.push(Deno.UnsafePointer.create(BigInt(slot + 1))!);
      this.#slotOwner.push(null);
      this.#slotGen.push(0);
      this.#slotHandle.push(null);
      this.#slotPending.push(0);
    }
    for (let i = CHUNK_SLOTS - 1; i > 0; i--) this.#freeSlots.push(first + i);
    return first;
  }

  #releaseSlot(slot: number): void {
    this.#slotOwner[slot] = null;
    this.#slotHandle[slot] = null;
    this.#freeSlots.push(slot);
  }

  /** Submits the AFD poll request of `reg` on its slot; returns the NTSTATUS. */
  #submit(reg: Registration): number {
    const slot = reg.slot;
    const words = this.#chunkWords[(slot / CHUNK_SLOTS) | 0];
    const w = (slot % CHUNK_SLOTS) * SLOT_WORDS;
    const mask = afdEventsFor(reg.interest);
    words[w + W_IOSB_STATUS] = STATUS_PENDING;
    words[w + W_IOSB_STATUS + 1] = 0;
    words[w + W_TIMEOUT_LO] = 0xffffffff; // Timeout = INT64_MAX: never time out
    words[w + W_TIMEOUT_LO + 1] = 0x7fffffff;
    words[w + W_COUNT] = 1;
    words[w + W_EXCLUSIVE] = 0;
    words[w + W_HANDLE_LO] = reg.baseLo;
    words[w + W_HANDLE_LO + 1] = reg.baseHi;
    words[w + W_EVENTS] = mask;
    words[w + W_STATUS] = 0;
    this.#slotOwner[slot] = reg;
    this.#slotGen[slot] = reg.gen;
    this.#slotHandle[slot] = reg.group.handle;
    const status = this.#lib.ntdll.NtDeviceIoControlFile(
      reg.group.handle,
      null,
      null,
      this.#slotApc[slot],
      this.#slotIosb[slot],
      IOCTL_AFD_POLL,
      this.#slotInfo[slot],
      AFD_POLL_INFO.size,
      this.#slotInfo[slot],
      AFD_POLL_INFO.size,
    );
    if (status === STATUS_SUCCESS || status === STATUS_PENDING) {
      // Either way a completion packet is queued (no FILE_SKIP_COMPLETION_PORT_ON_SUCCESS).
      reg.pendingMask = mask;
      this.#slotPending[slot] = 1;
      this.#pendingCount++;
    }
    return status;
  }

  /** Detaches a slot from its registration; cancels its request if one is outstanding. */
  #orphan(slot: number): void {
    this.#slotOwner[slot] = null;
    const handle = this.#slotHandle[slot];
    if (this.#slotPending[slot] && handle !== null) {
      // STATUS_NOT_FOUND means it completed already; its packet is on the way either way.
      this.#lib.ntdll.NtCancelIoFileEx(handle, this.#slotIosb[slot], this.#cancelIosb);
    }
  }

  /** Removes a registration; its outstanding request (if any) is cancelled. */
  #drop(reg: Registration): void {
    this.#registry.delete(reg.fd);
    reg.registered = false;
    reg.group.members--;
    if (this.#slotPending[reg.slot]) this.#orphan(reg.slot);
    else this.#releaseSlot(reg.slot);
    reg.pendingMask = 0;
  }

  #queueRearm(reg: Registration): void {
    if (reg.queued) return;
    reg.queued = true;
    this.#rearm[this.#rearmLength++] = reg;
  }

  /** Re-submits the requests of registrations reported since the last wait. */
  #flushRearms(): void {
    const queue = this.#rearm;
    const length = this.#rearmLength;
    this.#rearmLength = 0;
    for (let i = 0; i < length; i++) {
      const reg = queue[i]!;
      queue[i] = undefined;
      reg.queued = false;
      if (!reg.registered || reg.dead || reg.stalled || reg.pendingMask !== 0) continue;
      const status = this.#submit(reg);
      if (status === STATUS_SUCCESS || status === STATUS_PENDING) continue;
      if (status === STATUS_INVALID_HANDLE) {
        reg.dead = true; // the socket was closed: it drops out, as a closed fd does from epoll
      } else {
        reg.stalled = true; // reported once as ERROR; modify() retries
        this.#stalled.push(reg);
      }
    }
  }

  /** Reports registrations whose re-arm failed at `batch[out...]`; returns the new length. */
  #emitStalled(batch: EventBatch, out: number): number {
    while (this.#stalled.length > 0 && out < batch.capacity) {
      const reg = this.#stalled.pop()!;
      if (!reg.registered || !reg.stalled) continue;
      batch.tokens[out] = reg.token;
      batch.readiness[out] = ERROR | HANGUP;
      out++;
    }
    return out;
  }

  /**
   * Turns `n` completion entries into events at `batch[out...]`; returns the new length. Entries
   * that do not fit are still consumed and re-armed, so level-triggered readiness comes back.
   * `sync`: decoded on behalf of a sync wait (matters for the wake packet).
   */
  #decode(entries: Uint32Array, n: number, batch: EventBatch, out: number, sync: boolean): number {
    const tokens = batch.tokens;
    const readinesses = batch.readiness;
    const capacity = batch.capacity;
    for (let i = 0; i < n; i++) {
      const e = i * ENTRY_WORDS;
      const key = entries[e + W_ENTRY_KEY];
      if (entries[e + W_ENTRY_KEY + 1] !== 0) continue;
      if (key === KEY_WAKE) {
        this.#wakePosted = false;
        // A sync wait took the packet meant for a parked waitAsync: post it again for that one.
        if (sync && this.#parked !== null && !this.#asyncTaken) this.#postWake();
        continue;
      }
      if (key !== KEY_AFD || entries[e + W_ENTRY_OVERLAPPED + 1] !== 0) continue;
      const slot = entries[e + W_ENTRY_OVERLAPPED] - 1;
      if (slot < 0 || slot >= this.#slotPending.length || this.#slotPending[slot] === 0) continue;
      this.#slotPending[slot] = 0;
      this.#pendingCount--;
      const reg = this.#slotOwner[slot];
      if (reg === null || reg.slot !== slot || reg.gen !== this.#slotGen[slot]) {
        // Stale: modify() or unregister() cancelled it. The slot is free only now.
        this.#releaseSlot(slot);
        continue;
      }
      reg.pendingMask = 0;
      const words = this.#chunkWords[(slot / CHUNK_SLOTS) | 0];
      const w = (slot % CHUNK_SLOTS) * SLOT_WORDS;
      const status = words[w + W_IOSB_STATUS];
      let readiness = 0;
      if (status === STATUS_CANCELLED) {
        // Cancelled while still current (not by us): its output was not written. Re-arm.
      } else if (ntError(status)) {
        readiness = ERROR;
      } else if (words[w + W_COUNT] >= 1) {
        const events = words[w + W_EVENTS];
        if (events & AFD_POLL_LOCAL_CLOSE) {
          reg.dead = true; // closed without unregistering: stop polling it, as epoll does
          continue;
        }
        readiness = readinessFromAfd(events, reg.interest);
      }
      this.#queueRearm(reg);
      if (readiness !== 0 && out < capacity) {
        tokens[out] = reg.token;
        readinesses[out] = readiness;
        out++;
      }
    }
    return out;
  }

  #ntFailure(syscall: string, status: number): PollerError {
    const code = this.#lib.ntdll.RtlNtStatusToDosError(status);
    return winError(syscall, code, ntStatusText(status));
  }
}
