cd "$(dirname "$0")/../.."
sed 's#^mx.random.seed(0);#mx.setDefaultDevice(mx.gpu); mx.random.seed(0);#' .carry/probe/bufs.mjs > scratch_bufs_gpu.mjs 2>/dev/null
