// Destroying a librdkafka client without waiting on the brokers for ever.
//
// librdkafka 2.0.2 can block in rd_kafka_destroy() (and rd_kafka_consumer_close()) without a
// bound while a broker or the group coordinator is unreachable (librdkafka issues #4519, #4674):
// it joins its broker threads, which may wait for requests nobody will answer. A stop must end
// within its timeout, so the clients of a stop (KafkaConsumer::Close(deadline),
// KafkaProducer::Close(deadline)) are destroyed on a thread of their own, waited for until a
// deadline, and left behind after it. A client left behind still holds its sockets and threads;
// the process is expected to exit soon (rtdwd does, with _exit, see tools/rtdwd/main.cc).
#ifndef RTDW_CONNECTORS_KAFKA_DESTROY_H_
#define RTDW_CONNECTORS_KAFKA_DESTROY_H_

#include <chrono>
#include <functional>

namespace rtdw {

// Clients whose destruction passed its deadline and has not finished (yet). Thread-safe. While it
// is non-zero, the process must not run its static destructors (exit()): use _exit.
int KafkaClientsStillDestroying();

namespace kafka_internal {

// Runs `destroy` (rd_kafka_destroy*, and what must go with it) on a new thread and waits for it
// until `deadline`: true when it finished by then. Otherwise the thread is detached, counted by
// KafkaClientsStillDestroying() until it ends, and false is returned. Everything `destroy` uses
// (e.g. the client's opaque for log callbacks) must be owned by the function object.
bool DestroyBy(std::function<void()> destroy, std::chrono::steady_clock::time_point deadline);

}  // namespace kafka_internal
}  // namespace rtdw

#endif  // RTDW_CONNECTORS_KAFKA_DESTROY_H_
