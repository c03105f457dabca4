/**
 * The only `Deno.dlopen` tables of the IOCP backend (kernel32, ntdll, ws2_32), opened lazily by
 * {@linkcode openWindowsLibraries}. Handles and pointers the hot path passes are `"pointer"`
 * parameters (pointer objects made once); 64-bit integers appear only on control paths.
 *
 * @module
 */

const KERNEL32 = {
  CreateIoCompletionPort: {
    parameters: ["pointer", "pointer", "usize", "u32"],
    result: "pointer",
  },
  GetQueuedCompletionStatusEx: {
    parameters: ["pointer", "buffer", "u32", "buffer", "u32", "i32"],
    result: "i32",
  },
  // The same call parked on a thread of Deno's blocking pool, for waitAsync.
  GetQueuedCompletionStatusExAsync: {
    name: "GetQueuedCompletionStatusEx",
    parameters: ["pointer", "buffer", "u32", "buffer", "u32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  PostQueuedCompletionStatus: {
    parameters: ["pointer", "u32", "usize", "pointer"],
    result: "i32",
  },
  SetFileCompletionNotificationModes: { parameters: ["pointer", "u8"], result: "i32" },
  CloseHandle: { parameters: ["pointer"], result: "i32" },
  GetHandleInformation: { parameters: ["usize", "buffer"], result: "i32" },
  GetLastError: { parameters: [], result: "u32" },
} as const;

const NTDLL = {
  NtCreateFile: {
    parameters: [
      "buffer", // PHANDLE FileHandle (out)
      "u32", // ACCESS_MASK DesiredAccess
      "buffer", // POBJECT_ATTRIBUTES
      "buffer", // PIO_STATUS_BLOCK
      "pointer", // PLARGE_INTEGER AllocationSize
      "u32", // FileAttributes
      "u32", // ShareAccess
      "u32", // CreateDisposition
      "u32", // CreateOptions
      "pointer", // EaBuffer
      "u32", // EaLength
    ],
    result: "u32",
  },
  NtDeviceIoControlFile: {
    parameters: [
      "pointer", // FileHandle
      "pointer", // Event
      "pointer", // ApcRoutine
      "pointer", // ApcContext: becomes lpOverlapped of the completion entry
      "pointer", // IoStatusBlock (arena memory, written asynchronously)
      "u32", // IoControlCode
      "pointer", // InputBuffer
      "u32", // InputBufferLength
      "pointer", // OutputBuffer (arena memory, written asynchronously)
      "u32", // OutputBufferLength
    ],
    result: "u32",
  },
  NtCancelIoFileEx: { parameters: ["pointer", "pointer", "buffer"], result: "u32" },
  RtlNtStatusToDosError: { parameters: ["u32"], result: "u32" },
} as const;

const WS2_32 = {
  WSAStartup: { parameters: ["u16", "buffer"], result: "i32" },
  WSACleanup: { parameters: [], result: "i32" },
  WSAGetLastError: { parameters: [], result: "i32" },
  getsockopt: { parameters: ["usize", "i32", "i32", "buffer", "buffer"], result: "i32" },
  WSAIoctl: {
    parameters: ["usize", "u32", "pointer", "u32", "buffer", "u32", "buffer", "pointer", "pointer"],
    result: "i32",
  },
} as const;

/** The three libraries the backend uses. */
export interface WindowsLibraries {
  /** kernel32.dll symbols. */
  readonly kernel32: Deno.DynamicLibrary<typeof KERNEL32>["symbols"];
  /** ntdll.dll symbols. */
  readonly ntdll: Deno.DynamicLibrary<typeof NTDLL>["symbols"];
  /** ws2_32.dll symbols. */
  readonly ws2: Deno.DynamicLibrary<typeof WS2_32>["symbols"];
  /** Closes every library opened. */
  close(): void;
}

/** Opens kernel32, ntdll and ws2_32; closes what was opened if one fails. */
export function openWindowsLibraries(): WindowsLibraries {
  const opened: { close(): void }[] = [];
  try {
    const kernel32 = Deno.dlopen("kernel32.dll", KERNEL32);
    opened.push(kernel32);
    const ntdll = Deno.dlopen("ntdll.dll", NTDLL);
    opened.push(ntdll);
    const ws2 = Deno.dlopen("ws2_32.dll", WS2_32);
    opened.push(ws2);
    return {
      kernel32: kernel32.symbols,
      ntdll: ntdll.symbols,
      ws2: ws2.symbols,
      close() {
        for (const lib of opened.reverse()) lib.close();
      },
    };
  } catch (error) {
    for (const lib of opened.reverse()) lib.close();
    throw error;
  }
}
