// Brave peer for the interop tests: a Java service instrumented the way Spring
// and plain Kafka clients are, with Brave's KafkaTracing (B3 single header).
//
//   java -cp '.cache/java-peer/libs/*' BravePeer.java produce <bootstrap> <topic>
//       sends one record through Brave's TracingProducer inside a local root span;
//       prints "SENT <trace id> <producer span id> <b3 header as written>"
//   java -cp '.cache/java-peer/libs/*' BravePeer.java consume <bootstrap> <topic> <timeout ms>
//       reads one record with a plain consumer and joins it with KafkaTracing.nextSpan;
//       prints "JOINED <trace id> <parent span id> <span id>"
import brave.Span;
import brave.Tracing;
import brave.kafka.clients.KafkaTracing;
import java.time.Duration;
import java.util.List;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class BravePeer {
  public static void main(String[] args) throws Exception {
    Tracing tracing = Tracing.newBuilder().localServiceName("brave-peer").build();
    KafkaTracing kafkaTracing = KafkaTracing.create(tracing);
    try {
      if (args[0].equals("produce")) produce(kafkaTracing, tracing, args[1], args[2]);
      else consume(kafkaTracing, args[1], args[2], Long.parseLong(args[3]));
    } finally {
      tracing.close();
    }
  }

  static void produce(KafkaTracing kafkaTracing, Tracing tracing, String bootstrap, String topic) throws Exception {
    Properties props = new Properties();
    props.put("bootstrap.servers", bootstrap);
    props.put("key.serializer", ByteArraySerializer.class.getName());
    props.put("value.serializer", ByteArraySerializer.class.getName());
    try (Producer<byte[], byte[]> producer = kafkaTracing.producer(new KafkaProducer<byte[], byte[]>(props))) {
      Span root = tracing.tracer().newTrace().name("java-checkout").start();
      ProducerRecord<byte[], byte[]> record = new ProducerRecord<>(topic, "from-java".getBytes());
      try (var scope = tracing.tracer().withSpanInScope(root)) {
        producer.send(record).get();
      } finally {
        root.finish();
      }
      Header b3 = record.headers().lastHeader("b3");
      String value = b3 == null ? "-" : new String(b3.value());
      String[] parts = value.split("-");
      System.out.println("SENT " + parts[0] + " " + (parts.length > 1 ? parts[1] : "-") + " " + value);
    }
  }

  static void consume(KafkaTracing kafkaTracing, String bootstrap, String topic, long timeoutMs) {
    Properties props = new Properties();
    props.put("bootstrap.servers", bootstrap);
    props.put("group.id", "brave-peer-" + System.nanoTime());
    props.put("auto.offset.reset", "earliest");
    props.put("key.deserializer", ByteArrayDeserializer.class.getName());
    props.put("value.deserializer", ByteArrayDeserializer.class.getName());
    try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
      consumer.subscribe(List.of(topic));
      long deadline = System.currentTimeMillis() + timeoutMs;
      while (System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(500))) {
          Span span = kafkaTracing.nextSpan(record).name("java-handle").start();
          span.finish();
          System.out.println("JOINED " + span.context().traceIdString() + " "
              + (span.context().parentIdString() == null ? "-" : span.context().parentIdString()) + " "
              + span.context().spanIdString());
          return;
        }
      }
      System.out.println("TIMEOUT");
    }
  }
}
