/**
 * @module
 * The two kinds of bearer tokens, told apart by their prefix so neither side has to guess:
 *
 * - API tokens `gpt_<id>_<secret>` belong to a user and open the control plane's API. Gateways
 *   refuse them: a replica behind a gateway must never see a credential that works on the API.
 * - Service tokens `gps_<id>_<secret>` belong to a project and open its services on its gateways,
 *   nothing else: the API refuses them.
 *
 * `id` (12 base62) finds the stored row; only SHA-256 of `secret` (32 base62) is kept.
 */
export const API_TOKEN_PATTERN = /^gpt_([0-9A-Za-z]{12})_([0-9A-Za-z]{32})$/;
export const SERVICE_TOKEN_PATTERN = /^gps_([0-9A-Za-z]{12})_([0-9A-Za-z]{32})$/;

/** Told to a caller that presents a service token to the API. */
export const SERVICE_TOKEN_ON_API =
  "this is a service token (gps_…): it opens a project's services on its gateways, not the API; use an API token (gpt_…)";
