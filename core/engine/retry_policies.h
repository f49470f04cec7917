// The retry policies of the jobs, one per kind of wait; every retry loop runs through
// RetryUntil (core/backoff.h) with one of them.
#ifndef RTDW_CORE_ENGINE_RETRY_POLICIES_H_
#define RTDW_CORE_ENGINE_RETRY_POLICIES_H_

#include <chrono>

#include "core/backoff.h"

namespace rtdw {

// Waiting for a service to answer (Elasticsearch, the group coordinator, a de-dup restore) ...
inline constexpr BackoffOptions kServiceWaitBackoff{std::chrono::milliseconds(500),
                                                    std::chrono::milliseconds(100),
                                                    std::chrono::milliseconds(10000), 2.0};
// ... running a batch again that failed to commit (a Redis or disk error, a produce failure) ...
inline constexpr BackoffOptions kBatchRetryBackoff{std::chrono::milliseconds(200),
                                                   std::chrono::milliseconds(50),
                                                   std::chrono::milliseconds(10000), 2.0};
// ... delivering a journal entry again (its bulk rounds retry inside the sink first).
inline constexpr BackoffOptions kDeliveryRetryBackoff{std::chrono::milliseconds(500),
                                                      std::chrono::milliseconds(100),
                                                      std::chrono::milliseconds(30000), 2.0};

}  // namespace rtdw

#endif  // RTDW_CORE_ENGINE_RETRY_POLICIES_H_
