/**
 * /api/v1/status — connections, rates per minute, queue sizes, soft/hard bounce counts; and
 * /api/v1/status/overview — per-bucket series for the dashboard's charts (with the queue depth
 * samples kept by the server).
 */
import { durationParam, HttpError, type Route } from '../route.js';
import type { QueueDepthSampler } from '../queue-depth-sampler.js';

export function statusRoutesV1(depth: QueueDepthSampler): readonly Route[] {
  return [
    {
      method: 'GET',
      path: '/api/v1/status',
      handle: ({ admin }) => ({ json: admin.status() }),
    },
    {
      method: 'GET',
      path: '/api/v1/status/overview',
      handle: ({ query, admin }) => {
        const windowMs = durationParam(query.get('window'), 'window') ?? 3_600_000;
        const bucketMs = durationParam(query.get('bucket'), 'bucket') ?? 60_000;
        if (bucketMs < 1000 || windowMs / bucketMs > 2000) {
          throw new HttpError(400, 'bad-parameter', 'bucket: at least 1s, and at most 2000 buckets per window');
        }
        return { json: { ...admin.overview(windowMs, bucketMs), queueDepth: depth.since(admin.now() - windowMs) } };
      },
    },
  ];
}
