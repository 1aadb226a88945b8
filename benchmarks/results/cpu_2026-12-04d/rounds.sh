cd /work/main
for r in 1 2 3 4 5 6; do
  for m in gan dragan dcgan dcgan64; do
    case $m in gan|dragan) a="--steps 60 --block 5";; dcgan) a="--steps 30 --block 5";; dcgan64) a="--steps 16 --block 2";; esac
    echo "round $r $m $(date +%T) $(cut -d' ' -f1-3 /proc/loadavg) $(git rev-parse --short HEAD)" >> /tmp/cpur/load.txt
    timeout 900 python benchmarks/train_step.py --model $m --batch-size 64 --device cpu --torch --json $a --out /tmp/cpur/cpu_$m.jsonl > /dev/null 2>>/tmp/cpur/err.txt
  done
done
echo finished >> /tmp/cpur/load.txt
