package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rabbitmq/amqp091-go"

	"github.com/ordersvc/orders/gen/db"
	"github.com/ordersvc/orders/internal/messaging"
)

// PipelineResult is one sustained-rate run of the event pipeline.
type PipelineResult struct {
	TargetRate       float64 `json:"target_rate"`
	AchievedRate     float64 `json:"achieved_create_rate"`
	Seconds          float64 `json:"seconds"`
	Orders           int     `json:"orders"`
	CreateErrors     int     `json:"create_errors"`
	ProcessedPerSec  float64 `json:"processed_per_sec"`            // from the first to the last processed_at, drain included
	ProcessedInRun   float64 `json:"processed_during_run_per_sec"` // orders processed while creates ran, per second
	CommitToProcP50  float64 `json:"commit_to_processed_p50_ms"`
	CommitToProcP99  float64 `json:"commit_to_processed_p99_ms"`
	BacklogSamples   []int64 `json:"backlog_samples"`             // orders created in the run and not yet processed
	OutboxSamples    []int64 `json:"outbox_samples"`              // events not yet forwarded to RabbitMQ
	EventQueue       []int64 `json:"new_order_queue_samples"`     // new_order events waiting in RabbitMQ
	TaskQueue        []int64 `json:"process_order_queue_samples"` // process_order tasks waiting in RabbitMQ
	BacklogMax       int64   `json:"backlog_max"`
	BacklogEnd       int64   `json:"backlog_at_end"`
	DrainSeconds     float64 `json:"drain_seconds"`
	DrainRate        float64 `json:"drain_per_sec"` // the backlog left at the end over the time to process it, API idle
	SampleIntervalMS int     `json:"sample_interval_ms"`
	// Cores each part of the system used while creates ran: where the
	// machine's 2 cores went (api, workers, postgres, rabbitmq, redis, load).
	CPUCores map[string]float64 `json:"cpu_cores_during_run"`
	// PostgreSQL transactions committed in the bench database per order
	// created, while creates ran: the API's, the forwarders' claims and
	// the task handlers' group commits together.
	TxPerOrder float64   `json:"db_transactions_per_order"`
	Latencies  []float64 `json:"-"`
}

// pipelineRun creates orders through the API at rate per second (open loop:
// a pacer hands out one token per order, workers take them), or as fast as
// the API answers when rate is 0 (closed loop), for d, sampling
// the backlog of the whole pipeline (orders not yet processed) and of its
// first stage (events not yet forwarded), then waits for every order to be processed and reads
// commit -> processed latencies from the database.
func pipelineRun(ctx context.Context, a *api, s *system, pool *pgxpool.Pool, rate float64, d time.Duration, workers int) (PipelineResult, error) {
	res := PipelineResult{TargetRate: rate, SampleIntervalMS: 500}
	since := time.Now().UTC()
	tokens := make(chan struct{}, workers)
	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()

	// The backlog comes from the workers' own counters (orders created
	// minus orders processed), not from counting rows: a count over the
	// orders table twice a second would take PostgreSQL CPU from the
	// system being measured.
	start0, err := readWorkers(ctx, s)
	if err != nil {
		return res, err
	}
	processedAtStart := start0.processed
	queues, err := dialQueues(s)
	if err != nil {
		return res, err
	}
	defer queues.close()
	var created, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tokens {
				if err := a.createOrder(ctx, w, 0); err != nil {
					failed.Add(1)
				} else {
					created.Add(1)
				}
			}
		}()
	}
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if w, err := readWorkers(ctx, s); err == nil {
					res.BacklogSamples = append(res.BacklogSamples, max(0, created.Load()-(w.processed-processedAtStart)))
					res.OutboxSamples = append(res.OutboxSamples, w.unforwarded)
					events, tasks := queues.depths()
					res.EventQueue = append(res.EventQueue, events)
					res.TaskQueue = append(res.TaskQueue, tasks)
				}
			}
		}
	}()

	start := time.Now()
	cpuBefore := cpuSeconds(s)
	txBefore, err := committedTx(ctx, pool)
	if err != nil {
		return res, err
	}
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(time.Second) / rate)
	}
	next := start
pace:
	for {
		next = next.Add(interval)
		if wait := time.Until(next); interval > 0 && wait > 0 {
			select {
			case <-runCtx.Done():
				break pace
			case <-time.After(wait):
			}
		}
		select {
		case tokens <- struct{}{}:
		case <-runCtx.Done():
			break pace
		}
	}
	close(tokens)
	wg.Wait()
	<-samplerDone
	elapsed := time.Since(start)
	res.CPUCores = cpuCores(cpuBefore, cpuSeconds(s), elapsed.Seconds())
	txAfter, err := committedTx(ctx, pool)
	if err != nil {
		return res, err
	}
	res.Seconds, res.Orders, res.CreateErrors = elapsed.Seconds(), int(created.Load()), int(failed.Load())
	res.AchievedRate = float64(res.Orders) / elapsed.Seconds()
	if res.Orders > 0 {
		res.TxPerOrder = float64(txAfter-txBefore) / float64(res.Orders)
	}
	if len(res.BacklogSamples) > 0 {
		res.BacklogMax = slices.Max(res.BacklogSamples)
		res.BacklogEnd = res.BacklogSamples[len(res.BacklogSamples)-1]
		res.ProcessedInRun = float64(int64(res.Orders)-res.BacklogEnd) / elapsed.Seconds()
	}

	q := db.New(pool)
	drainStart := time.Now()
	for {
		w, err := readWorkers(ctx, s)
		if err != nil {
			return res, err
		}
		pending := created.Load() - (w.processed - processedAtStart)
		if pending <= 0 {
			break
		}
		if time.Since(drainStart) > 2*time.Minute {
			return res, fmt.Errorf("%d orders still unprocessed 2 minutes after the run", pending)
		}
		time.Sleep(100 * time.Millisecond)
	}
	res.DrainSeconds = time.Since(drainStart).Seconds()
	if res.DrainSeconds > 0.5 {
		res.DrainRate = float64(res.BacklogEnd) / res.DrainSeconds
	}

	lat, err := q.ProcessingLatenciesSince(ctx, since)
	if err != nil {
		return res, err
	}
	res.Latencies = lat
	if span, err := q.ProcessedSpanSince(ctx, since); err == nil && span.LastProcessed.After(span.FirstProcessed) {
		res.ProcessedPerSec = float64(len(lat)) / span.LastProcessed.Sub(span.FirstProcessed).Seconds()
	}
	slices.Sort(res.Latencies)
	if n := len(res.Latencies); n > 0 {
		res.CommitToProcP50 = res.Latencies[n/2]
		res.CommitToProcP99 = res.Latencies[int(float64(n-1)*0.99)]
	}
	return res, nil
}

// workerCounts are the workers' own figures, from one scrape of /metrics.
type workerCounts struct {
	processed   int64 // orders processed so far (each once: redelivered tasks do not count)
	unforwarded int64 // events in the outbox not yet forwarded
}

// readWorkers scrapes the workers' /metrics for the pipeline's counts.
func readWorkers(ctx context.Context, s *system) (workerCounts, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.statusURL+"/metrics", nil)
	if err != nil {
		return workerCounts{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return workerCounts{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return workerCounts{}, fmt.Errorf("workers /metrics: %s", resp.Status)
	}
	const processedSeries, unforwardedSeries = "orders_order_processing_latency_seconds_count", "orders_outbox_pending"
	var w workerCounts
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, _ := strings.Cut(sc.Text(), " ")
		var into *int64
		switch name {
		case processedSeries:
			into = &w.processed
		case unforwardedSeries:
			into = &w.unforwarded
		default:
			continue
		}
		v, err := strconv.ParseFloat(value, 64) // a gauge may read 1e+06
		if err != nil {
			return workerCounts{}, fmt.Errorf("workers /metrics %s: %w", name, err)
		}
		*into = int64(v)
		found++
	}
	if err := sc.Err(); err != nil {
		return workerCounts{}, err
	}
	if found != 2 {
		return workerCounts{}, fmt.Errorf("workers /metrics lacks %s or %s", processedSeries, unforwardedSeries)
	}
	return w, nil
}

// committedTx reads how many transactions the bench database has committed.
// PostgreSQL publishes these counts within a second or so.
func committedTx(ctx context.Context, pool *pgxpool.Pool) (int64, error) {
	var n int64
	err := pool.QueryRow(ctx, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").Scan(&n)
	return n, err
}

// queueDepths reads how many messages wait in the pipeline's two work queues.
type queueDepths struct {
	conn         *amqp091.Connection
	ch           *amqp091.Channel
	events, task string
}

func dialQueues(s *system) (*queueDepths, error) {
	topo := messaging.Topology{Namespace: s.namespace}
	conn, err := amqp091.Dial(amqpURL())
	if err != nil {
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("rabbitmq: %w", err)
	}
	return &queueDepths{conn: conn, ch: ch,
		events: topo.Queue(messaging.RouteOf(messaging.StartProcessingHandler)),
		task:   topo.Queue(messaging.RouteOf(messaging.ProcessOrderHandler))}, nil
}

// depths are the ready messages of the new_order and process_order queues
// (-1 when unreadable); messages handed to a consumer and not yet acked are
// not counted.
func (q *queueDepths) depths() (int64, int64) {
	depth := func(name string) int64 {
		st, err := q.ch.QueueDeclarePassive(name, true, false, false, false, nil)
		if err != nil {
			return -1
		}
		return int64(st.Messages)
	}
	return depth(q.events), depth(q.task)
}

func (q *queueDepths) close() { _ = q.conn.Close() }
