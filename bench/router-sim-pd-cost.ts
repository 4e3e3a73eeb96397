/**
 * @module
 * The costs of `router-sim-pd.ts`'s engines and KV transfers, with where each default comes from.
 */
import { DEFAULT_COST } from "./router-sim.ts";

export interface EngineCost {
  /** Seconds of prefill per uncached prompt token (`router-sim.ts`'s). */
  prefillPerToken: number;
  /** Seconds per engine step whatever it holds (reading the weights). */
  stepBase: number;
  /** Seconds per running decode in a step: 64 running give `router-sim.ts`'s 10 ms per token. */
  decodePerSeq: number;
  /** Uncached prompt tokens prefilled per step at most (chunked prefill). */
  chunkTokens: number;
  /** Requests admitted at once per worker (prefilling, decoding or waiting for their KV). */
  maxRunning: number;
  /**
   * KV memory per worker, tokens. An admitted request needs room for its uncached prompt tokens and,
   * where it decodes, its output (a decode worker: the whole prompt, transferred into fresh pages,
   * no prefix shared). The prefix cache (LRU over 16-token blocks) holds every prompt's pages, the
   * running ones' too, as a radix cache does: all the memory but what running requests' outputs take.
   */
  kvTokens: number;
  /** Seconds between engine scrapes (the policies' `engine`). */
  scrapeSeconds: number;
}

export const DEFAULT_ENGINE: EngineCost = {
  prefillPerToken: DEFAULT_COST.prefillPerToken,
  stepBase: 0.007,
  decodePerSeq: 0.00005,
  chunkTokens: 2048,
  maxRunning: DEFAULT_COST.concurrency,
  // An 8B model in bf16 (128 KiB of KV per token) with 16 GiB left for KV: a 40 GB A100 after weights.
  kvTokens: 131_072,
  scrapeSeconds: DEFAULT_COST.scrapeSeconds,
};

export interface KvTransfer {
  /** Fixed seconds per transfer (bootstrap handshake, completion notice): not on the NIC. */
  base: number;
  /** Seconds of the prefill worker's NIC per prompt token. */
  perToken: number;
}

/** KV bytes per token: Llama-3.1-8B in bf16, 32 layers × 8 KV heads × 128 dims × (K, V) × 2 bytes. */
export const KV_BYTES_PER_TOKEN = 32 * 8 * 128 * 2 * 2;

/** A transfer at `gbPerSecond` (GB/s per prefill worker) with `baseMs` of fixed latency. */
export const kvTransfer = (gbPerSecond: number, baseMs: number): KvTransfer => ({
  base: baseMs / 1000,
  perToken: KV_BYTES_PER_TOKEN / (gbPerSecond * 1e9),
});

/**
 * Mooncake's Transfer Engine measured 190 GB/s over 8 × 400 Gb/s RoCE (its README): 23.75 GB/s per
 * NIC, one NIC per GPU. The 2 ms fixed latency is an assumption (no published figure).
 */
export const DEFAULT_TRANSFER: KvTransfer = kvTransfer(23.75, 2);
