// Integration tests share two cores with PostgreSQL, RabbitMQ, workers and ffmpeg; running them one class at a
// time keeps their timing far from every timeout.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
