#!/usr/bin/python3
"""The original project's design, as the baseline of ci/bench (see docs/performance.md).

What the seed project ("projetofinalmodulo2") did, reduced to its data path:

  serve   A ThreadingHTTPServer on one port. POST /upload-json reads the body, json.loads it,
          opens a new pika connection per request, publishes the whole array as one persistent
          message to the durable queue baseline.uploads (declared here, no publisher confirms),
          then for each element SETEX <_id> 60 <element> in Redis and put_object of
          baseline/<_id>.json to S3, and answers 200. HTTP/1.0 as the stdlib server speaks it
          (a new TCP connection per request).
  worker  Consumes baseline.uploads, checks the seed's address-change rule in Redis for each
          element (GET <_id>, compare "endereco"; flag with SETEX fraud:<_id> 300 1) and acks.
          It counts processed elements in a Redis key (INCRBY; $TX_BASELINE_COUNTER, default
          baseline:processed), so that ci/bench can time the end of the run.
  cleanup Deletes the S3 objects under baseline/<prefix>, the counter and the queue.

Run with Debian's interpreter (/usr/bin/python3: python3-pika, python3-redis, python3-boto3).
Services come from the environment that `ci/stack env` prints: TX_AMQP_URL (administrator),
TX_REDIS_URL (database 15 is used instead of the URL's, to keep away from txpipe's keys),
TX_S3_ENDPOINT, TX_S3_ACCESS_KEY, TX_S3_SECRET_KEY, TX_S3_BUCKET, TX_S3_REGION. ci/bench points
TX_AMQP_URL at a vhost and TX_S3_BUCKET at a bucket of its own, deleted after the run.
"""

import argparse
import json
import os
import signal
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pika
import redis
from botocore.config import Config

QUEUE = "baseline.uploads"
COUNTER = os.environ.get("TX_BASELINE_COUNTER", "baseline:processed")
REDIS_DB = 15


def redis_client():
    url = urllib.parse.urlsplit(os.environ["TX_REDIS_URL"])
    return redis.Redis(host=url.hostname or "127.0.0.1", port=url.port or 6379,
                       password=url.password, db=REDIS_DB)


def s3_client(pool):
    # boto3's defaults (Signature V4, payload signed) work with s3rver; path-style addressing
    # because the bucket is not a DNS name on 127.0.0.1.
    return boto3.client(
        "s3",
        endpoint_url=os.environ["TX_S3_ENDPOINT"],
        aws_access_key_id=os.environ["TX_S3_ACCESS_KEY"],
        aws_secret_access_key=os.environ["TX_S3_SECRET_KEY"],
        region_name=os.environ.get("TX_S3_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=pool,
                      retries={"max_attempts": 1}),
    )


def amqp_params():
    return pika.URLParameters(os.environ["TX_AMQP_URL"])


class Handler(BaseHTTPRequestHandler):
    server_version = "baseline"

    def log_message(self, fmt, *args):  # quiet, like a production server without access log
        pass

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if self.path != "/upload-json":
            self.answer(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        try:
            items = json.loads(body)
        except ValueError as e:
            self.answer(400, {"error": str(e)})
            return
        if isinstance(items, dict):
            items = [items]
        try:
            # A new broker connection per request, as the original did.
            conn = pika.BlockingConnection(amqp_params())
            try:
                ch = conn.channel()
                ch.queue_declare(queue=QUEUE, durable=True)
                ch.basic_publish(exchange="", routing_key=QUEUE, body=json.dumps(items),
                                 properties=pika.BasicProperties(delivery_mode=2))
            finally:
                conn.close()
            for item in items:
                doc = json.dumps(item)
                self.server.redis.setex(item["_id"], 60, doc)
                self.server.s3.put_object(Bucket=os.environ["TX_S3_BUCKET"],
                                          Key="baseline/%s.json" % item["_id"], Body=doc.encode())
        except Exception as e:  # the original answered 500 on any failure
            self.answer(500, {"error": str(e)})
            return
        self.answer(200, {"message": "Arquivo recebido", "records": len(items)})


def serve(args):
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    server.redis = redis_client()
    server.s3 = s3_client(args.pool)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("baseline: listening on 127.0.0.1:%d" % args.port, flush=True)
    server.serve_forever()


def worker(args):
    r = redis_client()
    conn = pika.BlockingConnection(amqp_params())
    ch = conn.channel()
    ch.queue_declare(queue=QUEUE, durable=True)

    def on_message(channel, method, _props, body):
        items = json.loads(body)
        for item in items:
            # The seed's rule: the same _id within 60 s with a different address. The HTTP side
            # has already overwritten <_id> with this very record (the seed's race), so it only
            # fires when another upload of the same client came in between.
            prev = r.get(item["_id"])
            if prev is not None and json.loads(prev).get("endereco") != item.get("endereco"):
                r.setex("fraud:%s" % item["_id"], 300, "1")
        r.incrby(COUNTER, len(items))
        channel.basic_ack(delivery_tag=method.delivery_tag)

    def stop(*_):
        ch.stop_consuming()

    signal.signal(signal.SIGTERM, stop)
    ch.basic_consume(queue=QUEUE, on_message_callback=on_message)
    print("baseline worker: consuming %s" % QUEUE, flush=True)
    ch.start_consuming()
    conn.close()


def cleanup(args):
    s3 = s3_client(4)
    bucket = os.environ["TX_S3_BUCKET"]
    prefix = "baseline/" + args.prefix
    deleted = 0
    marker = ""
    while True:
        # ListObjects (V1): s3rver's ListObjectsV2 fails under Node 20's OpenSSL 3.
        page = s3.list_objects(Bucket=bucket, Prefix=prefix, Marker=marker, MaxKeys=1000)
        keys = [obj["Key"] for obj in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket,
                              Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
            deleted += len(keys)
            marker = keys[-1]
        if not page.get("IsTruncated") or not keys:
            break
    redis_client().delete(COUNTER)
    conn = pika.BlockingConnection(amqp_params())
    conn.channel().queue_delete(queue=QUEUE)
    conn.close()
    print("baseline cleanup: %d objects deleted under %s, queue %s deleted" %
          (deleted, prefix, QUEUE))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, default=18090)
    s.add_argument("--pool", type=int, default=64, help="boto3 connection pool size")
    sub.add_parser("worker")
    c = sub.add_parser("cleanup")
    c.add_argument("--prefix", default="", help="key prefix under baseline/ (the run's tag)")
    args = p.parse_args()
    {"serve": serve, "worker": worker, "cleanup": cleanup}[args.cmd](args)


if __name__ == "__main__":
    main()
