fn main() {
    qcnn_kernels::blas::set_single_thread();
    println!("{}", qcnn_kernels::blas::core_name());
}
